-- imnm screen: the coverage counts of the FHIR staging, what was read, used and not read
-- (DuckDB dialect; transpiled to Spark SQL). Run after stage_fhir.sql and coverage_results.sql.

CREATE OR REPLACE TEMPORARY VIEW imnm_coverage AS
WITH patients AS (
    SELECT DISTINCT person_id FROM imnm_person
),
conditions AS (
    SELECT c.id,
           MAX(CASE WHEN x.system IS NOT NULL THEN 1 ELSE 0 END) AS known_system,
           MAX(CASE WHEN k.person_id IS NOT NULL THEN 1 ELSE 0 END) AS used,
           MAX(CASE WHEN p.person_id IS NULL THEN 1 ELSE 0 END) AS orphan
    FROM fhir_condition AS c
    LEFT JOIN imnm_condition_codings AS x ON x.resource_id = c.id
    LEFT JOIN imnm_condition AS k ON k.person_id = x.person_id AND k.code = x.code
    LEFT JOIN patients AS p ON p.person_id = REGEXP_EXTRACT(c.subject.reference, '([^/:]+)$', 1)
    GROUP BY c.id
),
observations AS (
    SELECT o.id,
           MAX(CASE WHEN x.system IS NOT NULL THEN 1 ELSE 0 END) AS known_system,
           MAX(CASE WHEN k.set_name IS NOT NULL THEN 1 ELSE 0 END) AS used,
           MAX(CASE WHEN p.person_id IS NULL THEN 1 ELSE 0 END) AS orphan
    FROM fhir_observation AS o
    LEFT JOIN imnm_observation_codings AS x ON x.resource_id = o.id
    LEFT JOIN imnm_codes AS k ON k.system = x.system AND k.code = x.code
        AND k.set_name IN ('ck', 'antibody_test', 'genetic_test')
    LEFT JOIN patients AS p ON p.person_id = REGEXP_EXTRACT(o.subject.reference, '([^/:]+)$', 1)
    GROUP BY o.id
),
medications AS (
    SELECT m.resource_id AS id,
           MAX(CASE WHEN d.concept IS NOT NULL THEN 1 ELSE 0 END) AS used,
           MAX(CASE WHEN p.person_id IS NULL THEN 1 ELSE 0 END) AS orphan
    FROM imnm_medications AS m
    LEFT JOIN imnm_drug_matches AS d ON d.resource_id = m.resource_id
    LEFT JOIN patients AS p ON p.person_id = m.person_id
    GROUP BY m.resource_id
)
SELECT 'Condition' AS input, 'rows' AS item, COUNT(*) AS n FROM conditions
UNION ALL
SELECT 'Condition' AS input, 'in_code_set' AS item, SUM(used) AS n FROM conditions
UNION ALL
SELECT 'Condition' AS input, 'no_known_code_system' AS item, COUNT(*) AS n FROM conditions
WHERE known_system = 0
UNION ALL
SELECT 'Condition' AS input, 'subject_not_a_patient' AS item, SUM(orphan) AS n FROM conditions
UNION ALL
SELECT 'Observation' AS input, 'rows' AS item, COUNT(*) AS n FROM observations
UNION ALL
SELECT 'Observation' AS input, 'in_code_set' AS item, SUM(used) AS n FROM observations
UNION ALL
SELECT 'Observation' AS input, 'no_known_code_system' AS item, COUNT(*) AS n FROM observations
WHERE known_system = 0
UNION ALL
SELECT 'Observation' AS input, 'subject_not_a_patient' AS item, SUM(orphan) AS n
FROM observations
UNION ALL
SELECT 'Observation' AS input, item, n FROM imnm_result_coverage
UNION ALL
SELECT 'Medication' AS input, 'rows' AS item, COUNT(*) AS n FROM medications
UNION ALL
SELECT 'Medication' AS input, 'in_code_set' AS item, SUM(used) AS n FROM medications
UNION ALL
SELECT 'Medication' AS input, 'subject_not_a_patient' AS item, SUM(orphan) AS n
FROM medications
UNION ALL
SELECT 'Medication' AS input, CONCAT('in_code_set_by_', how) AS item, COUNT(*) AS n
FROM imnm_drug GROUP BY how
UNION ALL
SELECT 'person' AS input, 'rows' AS item, COUNT(*) AS n FROM fhir_patient
UNION ALL
SELECT 'person' AS input, 'no_birth_date' AS item, COUNT(*) AS n FROM imnm_person
WHERE birth_date IS NULL
