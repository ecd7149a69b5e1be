-- imnm screen: what the results staging could not read, the same for OMOP and FHIR
-- (DuckDB dialect; transpiled to Spark SQL). Reads the canonical imnm_measurement view; each
-- input's coverage view (coverage_omop.sql, coverage_fhir.sql) adds these rows under its
-- own table name.

CREATE OR REPLACE TEMPORARY VIEW imnm_result_coverage AS
SELECT 'ck_unit_unreadable' AS item, COUNT(*) AS n
FROM imnm_measurement WHERE set_name = 'ck' AND value IS NOT NULL AND factor IS NULL
UNION ALL
SELECT 'ck_without_value' AS item, COUNT(*) AS n
FROM imnm_measurement WHERE set_name = 'ck' AND value IS NULL
UNION ALL
SELECT 'antibody_uninterpretable' AS item, COUNT(*) AS n
FROM imnm_measurement WHERE set_name = 'antibody_test' AND result IS NULL
UNION ALL
SELECT 'antibody_by_reference_range' AS item, COUNT(*) AS n
FROM imnm_measurement WHERE result_basis = 'reference_range'
UNION ALL
SELECT 'genetic_uninterpretable' AS item, COUNT(*) AS n
FROM imnm_measurement WHERE set_name = 'genetic_test' AND result IS NULL;
