/* lookup views rendered from the knowledge files (imnm.screen.definition) */
CREATE OR REPLACE TEMPORARY VIEW imnm_params AS
SELECT
  *
FROM VALUES
  (CAST('2025-06-30' AS DATE), 25.0, 1.0, 84) AS v(as_of, max_age_years, min_ck_multiple, review_days);

CREATE OR REPLACE TEMPORARY VIEW imnm_codes AS
SELECT
  *
FROM VALUES
  ('dystrophy', 'icd10cm', 'G71.00', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.01', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.02', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.031', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.032', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.033', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.0340', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.0341', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.0342', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.0349', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.035', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.038', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.039', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.09', 'exact', NULL),
  ('dystrophy', 'icd10cm', 'G71.0', 'prefix', NULL),
  ('dystrophy', 'snomedct', '73297009', 'exact', NULL),
  ('dystrophy', 'snomedct', '76670001', 'exact', NULL),
  ('dystrophy', 'snomedct', '387732009', 'exact', NULL),
  ('dystrophy', 'snomedct', '399091004', 'exact', NULL),
  ('dystrophy', 'snomedct', '240046001', 'exact', NULL),
  ('dystrophy', 'snomedct', '240054004', 'exact', NULL),
  ('dystrophy', 'snomedct', '240067001', 'exact', NULL),
  ('dystrophy', 'snomedct', '78468005', 'exact', NULL),
  ('dystrophy', 'snomedct', '715341003', 'exact', NULL),
  ('dystrophy', 'snomedct', '718179003', 'exact', NULL),
  ('dystrophy', 'snomedct', '718176005', 'exact', NULL),
  ('dystrophy', 'snomedct', '715340002', 'exact', NULL),
  ('dystrophy', 'snomedct', '718850008', 'exact', NULL),
  ('dystrophy', 'snomedct', '719985001', 'exact', NULL),
  ('dystrophy', 'snomedct', '718178006', 'exact', NULL),
  ('dystrophy', 'snomedct', '77097004', 'exact', NULL),
  ('dystrophy', 'snomedct', '58795000', 'exact', NULL),
  ('myositis', 'icd10cm', 'M33.00', 'exact', 'jdm'),
  ('myositis', 'icd10cm', 'M33.01', 'exact', 'jdm'),
  ('myositis', 'icd10cm', 'M33.02', 'exact', 'jdm'),
  ('myositis', 'icd10cm', 'M33.03', 'exact', 'jdm'),
  ('myositis', 'icd10cm', 'M33.09', 'exact', 'jdm'),
  ('myositis', 'icd10cm', 'M33.20', 'exact', 'polymyositis'),
  ('myositis', 'icd10cm', 'M33.21', 'exact', 'polymyositis'),
  ('myositis', 'icd10cm', 'M33.22', 'exact', 'polymyositis'),
  ('myositis', 'icd10cm', 'M33.29', 'exact', 'polymyositis'),
  ('myositis', 'icd10cm', 'G72.41', 'exact', 'ibm'),
  ('myositis', 'icd10cm', 'G72.49', 'exact', 'imnm_or_other_inflammatory'),
  ('myositis', 'icd10cm', 'M33.1', 'prefix', 'dm'),
  ('myositis', 'icd10cm', 'M33.9', 'prefix', 'dm'),
  ('unexplained_myopathy', 'icd10cm', 'G72.9', 'exact', NULL),
  ('unexplained_myopathy', 'icd10cm', 'G72.89', 'exact', NULL),
  ('unexplained_myopathy', 'icd10cm', 'R74.8', 'exact', NULL),
  ('ck', 'loinc', '2157-6', 'exact', 'ck'),
  ('antibody_test', 'loinc', '93493-5', 'exact', 'HMGCR'),
  ('antibody_test', 'loinc', '33921-8', 'exact', 'SRP'),
  ('antibody_test', 'loinc', '53011-3', 'exact', 'SRP'),
  ('drug', 'rxnorm', '8638', 'exact', 'prednisolone'),
  ('drug', 'rxnorm', '8640', 'exact', 'prednisone'),
  ('drug', 'rxnorm', '6902', 'exact', 'methylprednisolone'),
  ('drug', 'rxnorm', '6851', 'exact', 'methotrexate'),
  ('drug', 'rxnorm', '5666', 'exact', 'ivig'),
  ('drug', 'rxnorm', '1426680', 'exact', 'ivig'),
  ('drug', 'rxnorm', '121191', 'exact', 'rituximab'),
  ('drug', 'rxnorm', '3002', 'exact', 'cyclophosphamide'),
  ('drug', 'rxnorm', '1256', 'exact', 'azathioprine'),
  ('drug', 'rxnorm', '68149', 'exact', 'mycophenolate_mofetil'),
  ('drug', 'rxnorm', '7145', 'exact', 'mycophenolate_mofetil'),
  ('drug', 'rxnorm', '42316', 'exact', 'tacrolimus'),
  ('drug', 'rxnorm', '3008', 'exact', 'cyclosporine'),
  ('drug', 'rxnorm', '83367', 'exact', 'statin'),
  ('drug', 'rxnorm', '36567', 'exact', 'statin'),
  ('drug', 'rxnorm', '301542', 'exact', 'statin'),
  ('drug', 'rxnorm', '42463', 'exact', 'statin'),
  ('drug', 'rxnorm', '6472', 'exact', 'statin'),
  ('drug', 'rxnorm', '41127', 'exact', 'statin'),
  ('drug', 'rxnorm', '861634', 'exact', 'statin'),
  ('genetic_test', 'loinc', '51969-4', 'exact', NULL) AS v(set_name, system, code, match_kind, concept);

CREATE OR REPLACE TEMPORARY VIEW imnm_vocabulary AS
SELECT
  *
FROM VALUES
  ('ICD10CM', 'icd10cm'),
  ('SNOMED', 'snomedct'),
  ('LOINC', 'loinc'),
  ('RxNorm', 'rxnorm') AS v(vocabulary_id, system);

CREATE OR REPLACE TEMPORARY VIEW imnm_fhir_system AS
SELECT
  *
FROM VALUES
  ('http://hl7.org/fhir/sid/icd-10-cm', 'icd10cm'),
  ('http://snomed.info/sct', 'snomedct'),
  ('http://loinc.org', 'loinc'),
  ('http://www.nlm.nih.gov/research/umls/rxnorm', 'rxnorm') AS v(uri, system);

CREATE OR REPLACE TEMPORARY VIEW imnm_unit_factors AS
SELECT
  *
FROM VALUES
  ('IU/L', 1.0),
  ('IU/l', 1.0),
  ('U/L', 1.0),
  ('U/l', 1.0),
  ('[IU]/L', 1.0),
  ('u/L', 1.0),
  ('ukat/L', 60.0),
  ('ukat/l', 60.0),
  ('µkat/L', 60.0),
  ('μkat/L', 60.0) AS v(unit, factor);

CREATE OR REPLACE TEMPORARY VIEW imnm_ck_bands AS
SELECT
  *
FROM VALUES
  ('male', 0.25, 6.0, 308.0),
  ('male', 6.0, 18.0, 499.0),
  ('male', 18.0, 200.0, 336.0),
  ('female', 0.25, 6.0, 192.0),
  ('female', 6.0, 15.0, 391.0),
  ('female', 15.0, 18.0, 269.0),
  ('female', 18.0, 200.0, 176.0) AS v(sex, min_age_years, max_age_years, upper_limit);

CREATE OR REPLACE TEMPORARY VIEW imnm_corticosteroids AS
SELECT
  *
FROM VALUES
  ('corticosteroid'),
  ('methylprednisolone'),
  ('prednisolone'),
  ('prednisone') AS v(concept);

CREATE OR REPLACE TEMPORARY VIEW imnm_immunosuppressants AS
SELECT
  *
FROM VALUES
  ('azathioprine'),
  ('cyclophosphamide'),
  ('cyclosporine'),
  ('ivig'),
  ('methotrexate'),
  ('mycophenolate_mofetil'),
  ('rituximab'),
  ('tacrolimus') AS v(concept);

/* which inputs are missing: all present here; the run replaces this view */
CREATE OR REPLACE TEMPORARY VIEW imnm_inputs AS
SELECT
  *
FROM VALUES
  (0, 0, 0) AS v(condition_missing, measurement_missing, drug_missing);

/* imnm screen, staging from OMOP CDM v5.4 (DuckDB dialect; transpiled to Spark SQL). */
/* Reads: person, concept, condition_occurrence, measurement, drug_exposure (see sources.py). */
/* Writes the four canonical views the screen reads: imnm_person, imnm_condition, */
/* imnm_measurement, imnm_drug. Codes come from CONCEPT (vocabulary_id + concept_code) for */
/* both the standard and the source concept of each row. */
/* Birth date: year_of_birth with month and day when recorded; a missing month or day is */
/* taken as 1 July / the 1st (a convention that keeps the age error under six months). */
CREATE OR REPLACE TEMPORARY VIEW imnm_person AS
SELECT
  CAST(p.person_id AS STRING) AS person_id,
  MAKE_DATE(
    CAST(p.year_of_birth AS INT),
    CAST(COALESCE(p.month_of_birth, 7) AS INT),
    CAST(COALESCE(p.day_of_birth, 1) AS INT)
  ) AS birth_date,
  CASE p.gender_concept_id
    WHEN 8507
    THEN 'male'
    WHEN 8532
    THEN 'female'
    ELSE 'unknown'
  END AS sex
FROM person AS p
WHERE
  NOT p.year_of_birth IS NULL;

CREATE OR REPLACE TEMPORARY VIEW imnm_condition AS
WITH coded AS (
  SELECT
    person_id,
    condition_concept_id AS concept_id,
    condition_start_date
  FROM condition_occurrence
  UNION
  SELECT
    person_id,
    condition_source_concept_id AS concept_id,
    condition_start_date
  FROM condition_occurrence
  WHERE
    NOT condition_source_concept_id IS NULL
)
SELECT DISTINCT
  CAST(co.person_id AS STRING) AS person_id,
  v.system AS system,
  c.concept_code AS code,
  CAST(co.condition_start_date AS DATE) AS start_date,
  TRUE AS active
FROM coded AS co
JOIN concept AS c
  ON c.concept_id = co.concept_id
JOIN imnm_vocabulary AS v
  ON v.vocabulary_id = c.vocabulary_id;

CREATE OR REPLACE TEMPORARY VIEW imnm_measurement AS
SELECT
  CAST(m.person_id AS STRING) AS person_id,
  v.system AS system,
  c.concept_code AS code,
  CAST(m.value_as_number AS DOUBLE) AS value,
  COALESCE(m.unit_source_value, u.concept_code) AS unit,
  CAST(m.range_high AS DOUBLE) AS range_high,
  CASE
    WHEN LOWER(r.concept_name) IN ('positive', 'detected', 'present')
    THEN 'positive'
    WHEN LOWER(r.concept_name) IN ('negative', 'not detected', 'absent')
    THEN 'negative'
    ELSE NULL
  END AS result,
  CAST(m.measurement_date AS DATE) AS date
FROM measurement AS m
JOIN concept AS c
  ON c.concept_id = m.measurement_concept_id
JOIN imnm_vocabulary AS v
  ON v.vocabulary_id = c.vocabulary_id
LEFT JOIN concept AS u
  ON u.concept_id = m.unit_concept_id
LEFT JOIN concept AS r
  ON r.concept_id = m.value_as_concept_id;

CREATE OR REPLACE TEMPORARY VIEW imnm_drug AS
SELECT
  CAST(d.person_id AS STRING) AS person_id,
  v.system AS system,
  c.concept_code AS code,
  CAST(d.drug_exposure_start_date AS DATE) AS start_date,
  CAST(d.drug_exposure_end_date AS DATE) AS end_date
FROM drug_exposure AS d
JOIN concept AS c
  ON c.concept_id = d.drug_concept_id
JOIN imnm_vocabulary AS v
  ON v.vocabulary_id = c.vocabulary_id;

/* imnm screen: population case finding over the canonical views (DuckDB dialect; transpiled */
/* to Spark SQL). The code sets, CK limits, unit factors and parameters come from the same */
/* knowledge files as the per-child rules, rendered into the imnm_* lookup views by */
/* imnm.screen.definition. One row per child and tier: */
/*   test_for_antibodies    suspicion.dystrophy_label_unconfirmed: a dystrophy or unexplained */
/*                          myopathy label, no diagnostic genetic result, peak CK above */
/*                          min_ck_multiple x ULN, anti-HMGCR or anti-SRP never resulted, and */
/*                          neither positive */
/*   review_dystrophy_label suspicion.antibody_positive_with_dystrophy_label: a positive */
/*                          anti-HMGCR or anti-SRP under a dystrophy label */
/*   review_treatment       treatment.corticosteroid_alone: a positive anti-HMGCR or anti-SRP */
/*                          and corticosteroid without any other immunosuppressant or IVIg for */
/*                          at least review_weeks */
/*   not_assessable         a table the tier needs is missing from the input (imnm_inputs) */
/* Weakness is rarely coded, so the screen runs the suspicion rule with proximal weakness not */
/* required (parameter suspicion_require_proximal_weakness = false) and family history unknown. */
WITH params AS (
  SELECT
    *
  FROM imnm_params
), people AS (
  SELECT
    p.person_id,
    p.birth_date,
    p.sex,
    DATEDIFF(DAY, p.birth_date, params.as_of) / 365.25 AS age_years
  FROM imnm_person AS p
  CROSS JOIN params
  WHERE
    p.birth_date IS NULL
    OR DATEDIFF(DAY, p.birth_date, params.as_of) / 365.25 <= params.max_age_years
), active_conditions AS (
  SELECT
    c.person_id,
    c.system,
    c.code
  FROM imnm_condition AS c
  CROSS JOIN params
  WHERE
    c.active AND (
      c.start_date IS NULL OR c.start_date <= params.as_of
    )
), label_codes AS (
  SELECT
    set_name,
    system,
    code,
    match_kind
  FROM imnm_codes
  WHERE
    set_name IN ('dystrophy', 'unexplained_myopathy', 'myositis')
), labels AS (
  SELECT
    c.person_id,
    k.set_name,
    c.code
  FROM active_conditions AS c
  JOIN label_codes AS k
    ON k.system = c.system AND k.code = c.code
  UNION
  SELECT
    c.person_id,
    k.set_name,
    c.code
  FROM active_conditions AS c
  JOIN label_codes AS k
    ON k.system = c.system
    AND k.match_kind = 'prefix'
    AND SUBSTRING(c.code, 1, LENGTH(k.code)) = k.code
), label_flags AS (
  SELECT
    person_id,
    MAX(CASE WHEN set_name = 'dystrophy' THEN 1 ELSE 0 END) AS has_dystrophy,
    MAX(CASE WHEN set_name IN ('dystrophy', 'unexplained_myopathy') THEN 1 ELSE 0 END) AS has_warning_label,
    LISTAGG(DISTINCT code, ';') WITHIN GROUP (ORDER BY
      code NULLS LAST) AS label_codes
  FROM labels
  GROUP BY
    person_id
), results AS (
  SELECT
    m.person_id,
    k.set_name,
    k.concept,
    m.value,
    m.unit,
    m.range_high,
    m.result,
    m.date
  FROM imnm_measurement AS m
  JOIN imnm_codes AS k
    ON k.system = m.system AND k.code = m.code
  CROSS JOIN params
  WHERE
    k.set_name IN ('ck', 'antibody_test', 'genetic_test')
    AND (
      m.date IS NULL OR m.date <= params.as_of
    )
), ck AS (
  SELECT
    r.person_id,
    r.date,
    r.value * f.factor AS value_u_per_l,
    COALESCE(
      r.range_high * f.factor,
      b.upper_limit,
      CASE WHEN p.birth_date IS NULL THEN top.upper_limit END
    ) AS uln,
    CASE WHEN r.range_high IS NULL AND b.upper_limit IS NULL THEN 1 ELSE 0 END AS bound_only
  FROM results AS r
  CROSS JOIN params
  JOIN imnm_unit_factors AS f
    ON f.unit = r.unit
  JOIN people AS p
    ON p.person_id = r.person_id
  LEFT JOIN imnm_ck_bands AS b
    ON b.sex = CASE WHEN p.sex IN ('male', 'female') THEN p.sex ELSE 'male' END
    AND DATEDIFF(DAY, p.birth_date, COALESCE(r.date, params.as_of)) / 365.25 >= b.min_age_years
    AND DATEDIFF(DAY, p.birth_date, COALESCE(r.date, params.as_of)) / 365.25 < b.max_age_years
  CROSS JOIN (
    SELECT
      MAX(upper_limit) AS upper_limit
    FROM imnm_ck_bands
  ) AS top
  WHERE
    r.set_name = 'ck' AND NOT r.value IS NULL AND r.value >= 0
), ck_peak AS (
  SELECT
    ck.person_id,
    MAX(ck.value_u_per_l / ck.uln) AS peak_multiple,
    MAX(ck.value_u_per_l) AS peak_u_per_l,
    MAX(CASE WHEN ck.value_u_per_l / ck.uln > params.min_ck_multiple THEN 1 ELSE 0 END) AS ck_high
  FROM ck
  CROSS JOIN params
  GROUP BY
    ck.person_id
), antibodies AS (
  SELECT
    person_id,
    MAX(
      CASE
        WHEN concept = 'HMGCR' AND result = 'positive'
        THEN 2
        WHEN concept = 'HMGCR' AND result = 'negative'
        THEN 1
        ELSE 0
      END
    ) AS hmgcr,
    MAX(
      CASE
        WHEN concept = 'SRP' AND result = 'positive'
        THEN 2
        WHEN concept = 'SRP' AND result = 'negative'
        THEN 1
        ELSE 0
      END
    ) AS srp
  FROM results
  WHERE
    set_name = 'antibody_test' AND NOT result IS NULL
  GROUP BY
    person_id
), genetics AS (
  SELECT
    person_id,
    MAX(CASE WHEN result = 'positive' THEN 1 ELSE 0 END) AS confirmed
  FROM results
  WHERE
    set_name = 'genetic_test'
  GROUP BY
    person_id
), drugs AS (
  SELECT
    d.person_id,
    k.concept,
    d.start_date,
    COALESCE(d.end_date, d.start_date) AS end_date
  FROM imnm_drug AS d
  JOIN imnm_codes AS k
    ON k.system = d.system AND k.code = d.code
  CROSS JOIN params
  WHERE
    k.set_name = 'drug' AND NOT d.start_date IS NULL AND d.start_date <= params.as_of
), steroid_alone AS (
  SELECT
    d.person_id,
    DATEDIFF(DAY, MIN(d.start_date), LEAST(MAX(d.end_date), MAX(params.as_of))) AS days
  FROM drugs AS d
  CROSS JOIN params
  WHERE
    d.concept IN (
      SELECT
        concept
      FROM imnm_corticosteroids
    )
    AND NOT d.person_id IN (
      SELECT
        person_id
      FROM drugs
      WHERE
        concept IN (
          SELECT
            concept
          FROM imnm_immunosuppressants
        )
    )
  GROUP BY
    d.person_id
), candidates AS (
  SELECT
    person_id
  FROM label_flags
  UNION
  SELECT
    person_id
  FROM antibodies
  UNION
  SELECT
    person_id
  FROM steroid_alone
  UNION
  SELECT
    person_id
  FROM ck_peak
  WHERE
    ck_high = 1
), facts AS (
  SELECT
    p.person_id,
    p.sex,
    COALESCE(l.has_dystrophy, 0) AS has_dystrophy,
    COALESCE(l.has_warning_label, 0) AS has_warning_label,
    l.label_codes,
    c.peak_u_per_l,
    c.peak_multiple,
    COALESCE(c.ck_high, 0) AS ck_high,
    COALESCE(a.hmgcr, 0) AS hmgcr,
    COALESCE(a.srp, 0) AS srp,
    COALESCE(g.confirmed, 0) AS genetic_confirmed,
    s.days AS steroid_alone_days
  FROM candidates AS x
  JOIN people AS p
    ON p.person_id = x.person_id
  LEFT JOIN label_flags AS l
    ON l.person_id = p.person_id
  LEFT JOIN ck_peak AS c
    ON c.person_id = p.person_id
  LEFT JOIN antibodies AS a
    ON a.person_id = p.person_id
  LEFT JOIN genetics AS g
    ON g.person_id = p.person_id
  LEFT JOIN steroid_alone AS s
    ON s.person_id = p.person_id
), tiers AS (
  SELECT
    f.*,
    'test_for_antibodies' AS tier,
    'suspicion.dystrophy_label_unconfirmed [wang_liang_2023]' AS reasons
  FROM facts AS f
  WHERE
    f.has_warning_label = 1
    AND f.genetic_confirmed = 0
    AND f.ck_high = 1
    AND (
      f.hmgcr = 0 OR f.srp = 0
    )
    AND f.hmgcr < 2
    AND f.srp < 2
  UNION ALL
  SELECT
    f.*,
    'review_dystrophy_label' AS tier,
    'suspicion.antibody_positive_with_dystrophy_label [wang_liang_2023]' AS reasons
  FROM facts AS f
  WHERE
    f.has_dystrophy = 1 AND (
      f.hmgcr = 2 OR f.srp = 2
    )
  UNION ALL
  SELECT
    f.*,
    'review_treatment' AS tier,
    'treatment.corticosteroid_alone [wang_liang_2023]; review by 12 weeks [share_2017]' AS reasons
  FROM facts AS f
  CROSS JOIN params
  WHERE
    (
      f.hmgcr = 2 OR f.srp = 2
    ) AND f.steroid_alone_days >= params.review_days
  UNION ALL
  SELECT
    f.*,
    'not_assessable' AS tier,
    'missing input: measurement (CK, antibody and genetic results)' AS reasons
  FROM facts AS f
  CROSS JOIN imnm_inputs AS i
  WHERE
    i.measurement_missing = 1 AND f.has_warning_label = 1
  UNION ALL
  SELECT
    f.*,
    'not_assessable' AS tier,
    'missing input: condition (diagnosis labels)' AS reasons
  FROM facts AS f
  CROSS JOIN imnm_inputs AS i
  WHERE
    i.condition_missing = 1 AND f.ck_high = 1
  UNION ALL
  SELECT
    f.*,
    'not_assessable' AS tier,
    'missing input: drug exposure (treatments)' AS reasons
  FROM facts AS f
  CROSS JOIN imnm_inputs AS i
  WHERE
    i.drug_missing = 1 AND (
      f.hmgcr = 2 OR f.srp = 2
    )
)
SELECT
  person_id,
  tier,
  reasons,
  sex,
  label_codes,
  ROUND(peak_u_per_l, 1) AS peak_ck_u_per_l,
  ROUND(peak_multiple, 2) AS peak_ck_multiple_of_uln,
  CASE hmgcr WHEN 2 THEN 'positive' WHEN 1 THEN 'negative' ELSE 'not tested' END AS anti_hmgcr,
  CASE srp WHEN 2 THEN 'positive' WHEN 1 THEN 'negative' ELSE 'not tested' END AS anti_srp,
  steroid_alone_days AS days_on_corticosteroid_alone
FROM tiers
ORDER BY
  tier NULLS LAST,
  person_id NULLS LAST;
