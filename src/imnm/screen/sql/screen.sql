-- imnm screen: population case finding over the canonical views (DuckDB dialect; transpiled
-- to Spark SQL). The code sets, CK limits, unit factors and parameters come from the same
-- knowledge files as the per-child rules, rendered into the imnm_* lookup views by
-- imnm.screen.definition. One row per child and tier:
--   test_for_antibodies    suspicion.dystrophy_label_unconfirmed: a dystrophy or unexplained
--                          myopathy label, no diagnostic genetic result, peak CK above
--                          min_ck_multiple x ULN, anti-HMGCR or anti-SRP never resulted, and
--                          neither positive
--   review_dystrophy_label suspicion.antibody_positive_with_dystrophy_label: a positive
--                          anti-HMGCR or anti-SRP under a dystrophy label
--   review_treatment       treatment.corticosteroid_alone: a positive anti-HMGCR or anti-SRP
--                          and corticosteroid without any other immunosuppressant or IVIg for
--                          at least review_weeks
--   not_assessable         a table the tier needs is missing from the input (imnm_inputs)
-- Weakness is rarely coded, so the screen runs the suspicion rule with proximal weakness not
-- required (parameter suspicion_require_proximal_weakness = false) and family history unknown.

WITH params AS (
    SELECT * FROM imnm_params
),
people AS (
    SELECT p.person_id, p.birth_date, p.sex,
           DATE_DIFF('day', p.birth_date, params.as_of) / 365.25 AS age_years
    FROM imnm_person AS p CROSS JOIN params
    WHERE p.birth_date IS NULL
       OR DATE_DIFF('day', p.birth_date, params.as_of) / 365.25 <= params.max_age_years
),
active_conditions AS (
    SELECT c.person_id, c.set_name, c.code
    FROM imnm_condition AS c CROSS JOIN params
    WHERE c.active AND (c.start_date IS NULL OR c.start_date <= params.as_of)
),
label_flags AS (
    SELECT person_id,
           MAX(CASE WHEN set_name = 'dystrophy' THEN 1 ELSE 0 END) AS has_dystrophy,
           MAX(CASE WHEN set_name IN ('dystrophy', 'unexplained_myopathy') THEN 1 ELSE 0 END)
               AS has_warning_label,
           STRING_AGG(code, ';' ORDER BY code NULLS FIRST) AS label_codes
    FROM (SELECT DISTINCT person_id, set_name, code FROM active_conditions) AS distinct_codes
    GROUP BY person_id
),
results AS (
    SELECT m.person_id, m.set_name, m.concept, m.value, m.factor, m.range_high, m.result,
           m.date
    FROM imnm_measurement AS m
    CROSS JOIN params
    WHERE m.date IS NULL OR m.date <= params.as_of
),
ck AS (
    SELECT r.person_id, r.date,
           r.value * r.factor AS value_u_per_l,
           COALESCE(r.range_high * r.factor, b.upper_limit,
                    CASE WHEN p.birth_date IS NULL THEN top.upper_limit END) AS uln
    FROM results AS r
    CROSS JOIN params
    JOIN people AS p ON p.person_id = r.person_id
    LEFT JOIN imnm_ck_bands AS b
        ON b.sex = CASE WHEN p.sex IN ('male', 'female') THEN p.sex ELSE 'male' END
       AND DATE_DIFF('day', p.birth_date, COALESCE(r.date, params.as_of)) / 365.25
           >= b.min_age_years
       AND DATE_DIFF('day', p.birth_date, COALESCE(r.date, params.as_of)) / 365.25
           < b.max_age_years
    CROSS JOIN (SELECT MAX(upper_limit) AS upper_limit FROM imnm_ck_bands) AS top
    WHERE r.set_name = 'ck' AND r.value IS NOT NULL AND r.value >= 0 AND r.factor IS NOT NULL
),
ck_peak AS (
    SELECT ck.person_id,
           MAX(ck.value_u_per_l / ck.uln) AS peak_multiple,
           MAX(ck.value_u_per_l) AS peak_u_per_l,
           MAX(CASE WHEN ck.value_u_per_l / ck.uln > params.min_ck_multiple THEN 1 ELSE 0 END)
               AS ck_high
    FROM ck CROSS JOIN params
    GROUP BY ck.person_id
),
antibodies AS (
    SELECT person_id,
           MAX(CASE WHEN concept = 'HMGCR' AND result = 'positive' THEN 2
                    WHEN concept = 'HMGCR' AND result = 'negative' THEN 1 ELSE 0 END) AS hmgcr,
           MAX(CASE WHEN concept = 'SRP' AND result = 'positive' THEN 2
                    WHEN concept = 'SRP' AND result = 'negative' THEN 1 ELSE 0 END) AS srp
    FROM results
    WHERE set_name = 'antibody_test' AND result IS NOT NULL
    GROUP BY person_id
),
genetics AS (
    SELECT person_id, MAX(CASE WHEN result = 'positive' THEN 1 ELSE 0 END) AS confirmed
    FROM results
    WHERE set_name = 'genetic_test'
    GROUP BY person_id
),
drugs AS (
    SELECT d.person_id, d.concept, d.start_date,
           COALESCE(d.end_date, d.start_date) AS end_date
    FROM imnm_drug AS d
    CROSS JOIN params
    WHERE d.start_date IS NOT NULL AND d.start_date <= params.as_of
),
steroid_alone AS (
    SELECT d.person_id,
           DATE_DIFF('day', MIN(d.start_date),
                     LEAST(MAX(d.end_date), MAX(params.as_of))) AS days
    FROM drugs AS d CROSS JOIN params
    WHERE d.concept IN (SELECT concept FROM imnm_corticosteroids)
      AND d.person_id NOT IN (
          SELECT person_id FROM drugs
          WHERE concept IN (SELECT concept FROM imnm_immunosuppressants))
    GROUP BY d.person_id
),
candidates AS (
    SELECT person_id FROM label_flags
    UNION
    SELECT person_id FROM antibodies
    UNION
    SELECT person_id FROM steroid_alone
    UNION
    SELECT person_id FROM ck_peak WHERE ck_high = 1
),
facts AS (
    SELECT p.person_id, p.sex, p.age_years,
           COALESCE(l.has_dystrophy, 0) AS has_dystrophy,
           COALESCE(l.has_warning_label, 0) AS has_warning_label,
           l.label_codes,
           c.peak_u_per_l, c.peak_multiple, COALESCE(c.ck_high, 0) AS ck_high,
           COALESCE(a.hmgcr, 0) AS hmgcr, COALESCE(a.srp, 0) AS srp,
           COALESCE(g.confirmed, 0) AS genetic_confirmed,
           s.days AS steroid_alone_days
    FROM candidates AS x
    JOIN people AS p ON p.person_id = x.person_id
    LEFT JOIN label_flags AS l ON l.person_id = p.person_id
    LEFT JOIN ck_peak AS c ON c.person_id = p.person_id
    LEFT JOIN antibodies AS a ON a.person_id = p.person_id
    LEFT JOIN genetics AS g ON g.person_id = p.person_id
    LEFT JOIN steroid_alone AS s ON s.person_id = p.person_id
),
tiers AS (
    SELECT f.*, 'test_for_antibodies' AS tier,
           'suspicion.dystrophy_label_unconfirmed [wang_liang_2023]' AS reasons
    FROM facts AS f
    WHERE f.has_warning_label = 1 AND f.genetic_confirmed = 0 AND f.ck_high = 1
      AND (f.hmgcr = 0 OR f.srp = 0) AND f.hmgcr < 2 AND f.srp < 2
    UNION ALL
    SELECT f.*, 'review_dystrophy_label' AS tier,
           'suspicion.antibody_positive_with_dystrophy_label [wang_liang_2023]' AS reasons
    FROM facts AS f
    WHERE f.has_dystrophy = 1 AND (f.hmgcr = 2 OR f.srp = 2)
    UNION ALL
    SELECT f.*, 'review_treatment' AS tier,
           'treatment.corticosteroid_alone [wang_liang_2023]; review by 12 weeks [share_2017]'
               AS reasons
    FROM facts AS f CROSS JOIN params
    WHERE (f.hmgcr = 2 OR f.srp = 2) AND f.steroid_alone_days >= params.review_days
    UNION ALL
    SELECT f.*, 'not_assessable' AS tier,
           'missing input: measurement (CK, antibody and genetic results)' AS reasons
    FROM facts AS f CROSS JOIN imnm_inputs AS i
    WHERE i.measurement_missing = 1 AND f.has_warning_label = 1
    UNION ALL
    SELECT f.*, 'not_assessable' AS tier, 'missing input: condition (diagnosis labels)' AS reasons
    FROM facts AS f CROSS JOIN imnm_inputs AS i
    WHERE i.condition_missing = 1 AND f.ck_high = 1
    UNION ALL
    SELECT f.*, 'not_assessable' AS tier, 'missing input: drug exposure (treatments)' AS reasons
    FROM facts AS f CROSS JOIN imnm_inputs AS i
    WHERE i.drug_missing = 1 AND (f.hmgcr = 2 OR f.srp = 2)
)
SELECT
    person_id, tier, reasons, sex, FLOOR(age_years) AS age_years, label_codes,
    ROUND(peak_u_per_l, 1) AS peak_ck_u_per_l,
    ROUND(peak_multiple, 2) AS peak_ck_multiple_of_uln,
    CASE hmgcr WHEN 2 THEN 'positive' WHEN 1 THEN 'negative' ELSE 'not tested' END AS anti_hmgcr,
    CASE srp WHEN 2 THEN 'positive' WHEN 1 THEN 'negative' ELSE 'not tested' END AS anti_srp,
    steroid_alone_days AS days_on_corticosteroid_alone
FROM tiers
ORDER BY tier, person_id
