-- imnm screen: the coverage counts of the OMOP staging, what was read, used and not read
-- (DuckDB dialect; transpiled to Spark SQL). Run after stage_omop.sql and coverage_results.sql.
-- Each count is one pass. The tally of each event table is read three times below: through
-- a CTE, which DuckDB and PostgreSQL compute once, and staged on Spark, which would compute
-- a CTE again at each use (imnm.screen.run.STAGED_WHERE_CTES_INLINE).

-- Rows per concept pair of each event table (thousands of pairs).
CREATE OR REPLACE TEMPORARY VIEW imnm_tally AS
SELECT 'condition_occurrence' AS input, condition_concept_id AS cid,
       condition_source_concept_id AS sid, COUNT(*) AS n
FROM condition_occurrence
GROUP BY condition_concept_id, condition_source_concept_id
UNION ALL
SELECT 'measurement' AS input, measurement_concept_id AS cid, CAST(NULL AS BIGINT) AS sid,
       COUNT(*) AS n
FROM measurement
GROUP BY measurement_concept_id
UNION ALL
SELECT 'drug_exposure' AS input, drug_concept_id AS cid, drug_source_concept_id AS sid,
       COUNT(*) AS n
FROM drug_exposure
GROUP BY drug_concept_id, drug_source_concept_id;

CREATE OR REPLACE TEMPORARY VIEW imnm_coverage AS
WITH members AS (
    SELECT DISTINCT concept_id FROM imnm_set_concepts
),
tallied AS (
    SELECT input, cid, sid, n FROM imnm_tally
),
-- The distinct concept ids the rows use, looked up in CONCEPT (millions) once each: never
-- every tallied row against the whole vocabulary.
used_ids AS (
    SELECT cid AS concept_id FROM tallied WHERE cid IS NOT NULL AND cid <> 0
    UNION
    SELECT sid AS concept_id FROM tallied WHERE sid IS NOT NULL AND sid <> 0
),
known AS (
    SELECT u.concept_id FROM used_ids AS u JOIN concept AS c ON c.concept_id = u.concept_id
),
flagged AS (
    SELECT t.input, t.n,
           CASE WHEN mc.concept_id IS NOT NULL OR ms.concept_id IS NOT NULL THEN 1 ELSE 0 END
               AS used,
           CASE WHEN COALESCE(t.cid, 0) = 0 AND COALESCE(t.sid, 0) = 0 THEN 1 ELSE 0 END
               AS unmapped,
           CASE WHEN kc.concept_id IS NULL AND ks.concept_id IS NULL THEN 1 ELSE 0 END
               AS unknown
    FROM tallied AS t
    LEFT JOIN members AS mc ON mc.concept_id = t.cid
    LEFT JOIN members AS ms ON ms.concept_id = t.sid
    LEFT JOIN known AS kc ON kc.concept_id = t.cid AND t.cid <> 0
    LEFT JOIN known AS ks ON ks.concept_id = t.sid AND t.sid <> 0
),
per_input AS (
    SELECT input,
           SUM(n) AS rows_read,
           SUM(CASE WHEN used = 1 THEN n ELSE 0 END) AS in_code_set,
           SUM(CASE WHEN used = 0 AND unmapped = 1 THEN n ELSE 0 END) AS concept_id_0,
           SUM(CASE WHEN used = 0 AND unmapped = 0 AND unknown = 1 THEN n ELSE 0 END)
               AS concept_not_in_vocabulary
    FROM flagged
    GROUP BY input
),
by_item AS (
    SELECT p.input, i.item,
           CASE i.item
               WHEN 'rows' THEN p.rows_read
               WHEN 'in_code_set' THEN p.in_code_set
               WHEN 'concept_id_0' THEN p.concept_id_0
               WHEN 'concept_not_in_vocabulary' THEN p.concept_not_in_vocabulary
           END AS n
    FROM per_input AS p
    CROSS JOIN (VALUES ('rows'), ('in_code_set'), ('concept_id_0'),
                       ('concept_not_in_vocabulary')) AS i (item)
),
people AS (
    SELECT COUNT(*) AS rows_read,
           COUNT(CASE WHEN year_of_birth IS NULL THEN 1 END) AS no_birth_year
    FROM person
)
SELECT input, item, n FROM by_item WHERE n > 0
UNION ALL
SELECT 'measurement' AS input, item, n FROM imnm_result_coverage
UNION ALL
SELECT 'person' AS input, i.item,
       CASE i.item WHEN 'rows' THEN p.rows_read WHEN 'no_birth_year' THEN p.no_birth_year END
           AS n
FROM people AS p CROSS JOIN (VALUES ('rows'), ('no_birth_year')) AS i (item)
UNION ALL
SELECT 'vocabulary' AS input, 'concept_ancestor_rows' AS item, COUNT(*) AS n
FROM concept_ancestor
UNION ALL
SELECT 'vocabulary' AS input, 'concept_relationship_hierarchy_rows' AS item, COUNT(*) AS n
FROM concept_relationship AS r JOIN imnm_hierarchy AS h ON h.relationship_id = r.relationship_id
UNION ALL
SELECT 'vocabulary' AS input, CONCAT('set_concepts_by_', how) AS item, COUNT(*) AS n
FROM imnm_set_concepts GROUP BY how
UNION ALL
SELECT 'drug_exposure' AS input, CONCAT('in_code_set_by_', how) AS item, COUNT(*) AS n
FROM imnm_drug GROUP BY how
