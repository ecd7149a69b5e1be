-- imnm screen: the coverage counts of the FHIR staging, what was read, used and not read
-- (DuckDB dialect; transpiled to Spark SQL). Run after stage_fhir.sql and coverage_results.sql.
-- Each resource is read once, the patients are looked up once for all three resource types,
-- and each count is one pass (Spark computes a CTE again at each place it is read).

CREATE OR REPLACE TEMPORARY VIEW imnm_coverage AS
WITH patients AS (
    SELECT DISTINCT person_id FROM imnm_person
),
-- one row per resource and coding: whether the coding's system is known and whether it
-- matched a code set
codings AS (
    SELECT 'Condition' AS input, c.id,
           REGEXP_EXTRACT(c.subject.reference, '([^/:]+)$', 1) AS subject,
           CASE WHEN x.system IS NOT NULL THEN 1 ELSE 0 END AS known_system,
           CASE WHEN k.person_id IS NOT NULL THEN 1 ELSE 0 END AS used
    FROM fhir_condition AS c
    LEFT JOIN imnm_condition_codings AS x ON x.resource_id = c.id
    LEFT JOIN imnm_condition AS k ON k.person_id = x.person_id AND k.code = x.code
    UNION ALL
    SELECT 'Observation' AS input, o.id,
           REGEXP_EXTRACT(o.subject.reference, '([^/:]+)$', 1) AS subject,
           CASE WHEN x.system IS NOT NULL THEN 1 ELSE 0 END AS known_system,
           CASE WHEN k.set_name IS NOT NULL THEN 1 ELSE 0 END AS used
    FROM fhir_observation AS o
    LEFT JOIN imnm_observation_codings AS x ON x.resource_id = o.id
    LEFT JOIN imnm_codes AS k ON k.system = x.system AND k.code = x.code
        AND k.set_name IN ('ck', 'antibody_test', 'genetic_test')
    UNION ALL
    SELECT 'Medication' AS input, m.resource_id AS id, m.person_id AS subject,
           1 AS known_system,
           CASE WHEN d.concept IS NOT NULL THEN 1 ELSE 0 END AS used
    FROM imnm_medications AS m
    LEFT JOIN imnm_drug_matches AS d ON d.resource_id = m.resource_id
),
resources AS (
    SELECT x.input, x.id,
           MAX(x.known_system) AS known_system,
           MAX(x.used) AS used,
           MAX(CASE WHEN p.person_id IS NULL THEN 1 ELSE 0 END) AS orphan
    FROM codings AS x
    LEFT JOIN patients AS p ON p.person_id = x.subject
    GROUP BY x.input, x.id
),
totals AS (
    SELECT input,
           COUNT(*) AS rows_read,
           SUM(used) AS in_code_set,
           COUNT(CASE WHEN known_system = 0 THEN 1 END) AS no_known_code_system,
           SUM(orphan) AS subject_not_a_patient
    FROM resources
    GROUP BY input
),
by_item AS (
    SELECT t.input, i.item,
           CASE i.item
               WHEN 'rows' THEN t.rows_read
               WHEN 'in_code_set' THEN t.in_code_set
               WHEN 'no_known_code_system' THEN t.no_known_code_system
               WHEN 'subject_not_a_patient' THEN t.subject_not_a_patient
           END AS n
    FROM totals AS t
    CROSS JOIN (VALUES ('rows'), ('in_code_set'), ('no_known_code_system'),
                       ('subject_not_a_patient')) AS i (item)
)
-- (a resource type with no rows has no line here; the run counts it as 0)
SELECT input, item, n FROM by_item
WHERE NOT (input = 'Medication' AND item = 'no_known_code_system')
UNION ALL
SELECT 'Observation' AS input, item, n FROM imnm_result_coverage
UNION ALL
SELECT 'Medication' AS input, CONCAT('in_code_set_by_', how) AS item, COUNT(*) AS n
FROM imnm_drug GROUP BY how
UNION ALL
SELECT 'person' AS input, 'rows' AS item, COUNT(*) AS n FROM fhir_patient
UNION ALL
SELECT 'person' AS input, 'no_birth_date' AS item, COUNT(*) AS n FROM imnm_person
WHERE birth_date IS NULL
