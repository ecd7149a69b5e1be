-- imnm screen: what the results staging could not read, the same for OMOP and FHIR
-- (DuckDB dialect; transpiled to Spark SQL). Reads the canonical imnm_measurement view; each
-- input's coverage view (coverage_omop.sql, coverage_fhir.sql) adds these rows under its
-- own table name.

CREATE OR REPLACE TEMPORARY VIEW imnm_result_coverage AS
WITH totals AS (
    SELECT
        COUNT(CASE WHEN set_name = 'ck' AND value IS NOT NULL AND factor IS NULL THEN 1 END)
            AS ck_unit_unreadable,
        COUNT(CASE WHEN set_name = 'ck' AND value IS NULL THEN 1 END) AS ck_without_value,
        COUNT(CASE WHEN set_name = 'antibody_test' AND result IS NULL THEN 1 END)
            AS antibody_uninterpretable,
        COUNT(CASE WHEN result_basis = 'reference_range' THEN 1 END)
            AS antibody_by_reference_range,
        COUNT(CASE WHEN set_name = 'genetic_test' AND result IS NULL THEN 1 END)
            AS genetic_uninterpretable
    FROM imnm_measurement
)
-- one pass over the results, one row per count
SELECT i.item,
       CASE i.item
           WHEN 'ck_unit_unreadable' THEN t.ck_unit_unreadable
           WHEN 'ck_without_value' THEN t.ck_without_value
           WHEN 'antibody_uninterpretable' THEN t.antibody_uninterpretable
           WHEN 'antibody_by_reference_range' THEN t.antibody_by_reference_range
           WHEN 'genetic_uninterpretable' THEN t.genetic_uninterpretable
       END AS n
FROM totals AS t
CROSS JOIN (VALUES ('ck_unit_unreadable'), ('ck_without_value'), ('antibody_uninterpretable'),
                   ('antibody_by_reference_range'), ('genetic_uninterpretable')) AS i (item);
