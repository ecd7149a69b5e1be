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

-- The facts of every child are one aggregation of one stream of events, and the tiers one
-- pass over those facts: Spark inlines a CTE at each place it is used, so a CTE read twice is
-- computed twice (the shape this replaced, with the facts read by six tiers and each rule's
-- facts read twice, ran 38 Spark jobs of 101 stages on 600 children). Only the labels are
-- read twice: for the facts, and for the codes the worklist shows (one ordered aggregate
-- over the labels alone; over every event it cost DuckDB 40 ms at 100,000 children).

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
-- The active labels up to the screen date, each code once per label set.
labels AS (
    SELECT DISTINCT c.person_id, c.set_name, c.code
    FROM imnm_condition AS c CROSS JOIN params
    WHERE c.active AND (c.start_date IS NULL OR c.start_date <= params.as_of)
),
label_codes AS (
    SELECT person_id, STRING_AGG(code, ';' ORDER BY code NULLS FIRST) AS label_codes
    FROM labels
    GROUP BY person_id
),
-- One row per event the rules read, up to the screen date: the labels, the results, and the
-- drug exposures with whether each is a corticosteroid or another immunosuppressant or IVIg.
events AS (
    SELECT l.person_id, l.set_name, CAST(NULL AS VARCHAR) AS concept,
           CAST(NULL AS DOUBLE) AS value, CAST(NULL AS DOUBLE) AS factor,
           CAST(NULL AS DOUBLE) AS range_high, CAST(NULL AS VARCHAR) AS result,
           CAST(NULL AS DATE) AS date, CAST(NULL AS DATE) AS end_date,
           0 AS steroid, 0 AS other_drug
    FROM labels AS l
    UNION ALL
    SELECT m.person_id, m.set_name, m.concept,
           m.value, m.factor, m.range_high, m.result, m.date, CAST(NULL AS DATE) AS end_date,
           0 AS steroid, 0 AS other_drug
    FROM imnm_measurement AS m CROSS JOIN params
    WHERE m.date IS NULL OR m.date <= params.as_of
    UNION ALL
    SELECT d.person_id, 'drug' AS set_name, d.concept,
           CAST(NULL AS DOUBLE) AS value, CAST(NULL AS DOUBLE) AS factor,
           CAST(NULL AS DOUBLE) AS range_high, CAST(NULL AS VARCHAR) AS result,
           d.start_date AS date, COALESCE(d.end_date, d.start_date) AS end_date,
           CASE WHEN cs.concept IS NULL THEN 0 ELSE 1 END AS steroid,
           CASE WHEN ot.concept IS NULL THEN 0 ELSE 1 END AS other_drug
    FROM imnm_drug AS d
    CROSS JOIN params
    -- (a concept listed twice would repeat the row, which the facts' MIN and MAX ignore)
    LEFT JOIN imnm_corticosteroids AS cs ON cs.concept = d.concept
    LEFT JOIN imnm_immunosuppressants AS ot ON ot.concept = d.concept
    WHERE d.start_date IS NOT NULL AND d.start_date <= params.as_of
),
-- Each event of a child in scope, with a CK result's value and upper limit in U/L: the
-- result's own reference range, else the band for the child's sex and age on the day (the
-- male band where sex is unknown), else the highest band where the birth date is unknown.
scored AS (
    SELECT p.person_id, p.sex, p.age_years, e.set_name, e.concept, e.result,
           e.date, e.end_date, e.steroid, e.other_drug,
           CASE WHEN e.set_name = 'ck' AND e.value IS NOT NULL AND e.value >= 0
                     AND e.factor IS NOT NULL THEN 1 ELSE 0 END AS is_ck,
           e.value * e.factor AS value_u_per_l,
           COALESCE(e.range_high * e.factor, b.upper_limit,
                    CASE WHEN p.birth_date IS NULL THEN top.upper_limit END) AS uln
    FROM events AS e
    JOIN people AS p ON p.person_id = e.person_id
    CROSS JOIN params
    LEFT JOIN imnm_ck_bands AS b
        ON e.set_name = 'ck'
       AND b.sex = CASE WHEN p.sex IN ('male', 'female') THEN p.sex ELSE 'male' END
       AND DATE_DIFF('day', p.birth_date, COALESCE(e.date, params.as_of)) / 365.25
           >= b.min_age_years
       AND DATE_DIFF('day', p.birth_date, COALESCE(e.date, params.as_of)) / 365.25
           < b.max_age_years
    CROSS JOIN (SELECT MAX(upper_limit) AS upper_limit FROM imnm_ck_bands) AS top
),
facts AS (
    SELECT s.person_id, MAX(s.sex) AS sex, MAX(s.age_years) AS age_years,
           MAX(CASE WHEN s.set_name = 'dystrophy' THEN 1 ELSE 0 END) AS has_dystrophy,
           MAX(CASE WHEN s.set_name IN ('dystrophy', 'unexplained_myopathy') THEN 1 ELSE 0 END)
               AS has_warning_label,
           MAX(CASE WHEN s.is_ck = 1 THEN s.value_u_per_l END) AS peak_u_per_l,
           MAX(CASE WHEN s.is_ck = 1 THEN s.value_u_per_l / s.uln END) AS peak_multiple,
           MAX(CASE WHEN s.is_ck = 1 AND s.value_u_per_l / s.uln > params.min_ck_multiple
                    THEN 1 ELSE 0 END) AS ck_high,
           MAX(CASE WHEN s.set_name <> 'antibody_test' THEN 0
                    WHEN s.concept = 'HMGCR' AND s.result = 'positive' THEN 2
                    WHEN s.concept = 'HMGCR' AND s.result = 'negative' THEN 1 ELSE 0 END)
               AS hmgcr,
           MAX(CASE WHEN s.set_name <> 'antibody_test' THEN 0
                    WHEN s.concept = 'SRP' AND s.result = 'positive' THEN 2
                    WHEN s.concept = 'SRP' AND s.result = 'negative' THEN 1 ELSE 0 END) AS srp,
           MAX(CASE WHEN s.set_name = 'genetic_test' AND s.result = 'positive' THEN 1 ELSE 0 END)
               AS genetic_confirmed,
           CASE WHEN MAX(s.steroid) = 1 AND MAX(s.other_drug) = 0
                THEN DATE_DIFF('day', MIN(CASE WHEN s.steroid = 1 THEN s.date END),
                               LEAST(MAX(CASE WHEN s.steroid = 1 THEN s.end_date END),
                                     MAX(params.as_of)))
           END AS steroid_alone_days
    FROM scored AS s CROSS JOIN params
    GROUP BY s.person_id
),
tier_rules AS (
    SELECT * FROM (VALUES
        (1, 'test_for_antibodies', 'suspicion.dystrophy_label_unconfirmed [wang_liang_2023]'),
        (2, 'review_dystrophy_label',
         'suspicion.antibody_positive_with_dystrophy_label [wang_liang_2023]'),
        (3, 'review_treatment',
         'treatment.corticosteroid_alone [wang_liang_2023]; review by 12 weeks [share_2017]'),
        (4, 'not_assessable', 'missing input: measurement (CK, antibody and genetic results)'),
        (5, 'not_assessable', 'missing input: condition (diagnosis labels)'),
        (6, 'not_assessable', 'missing input: drug exposure (treatments)')
    ) AS t (tier_rule, tier, reasons)
),
tiers AS (
    SELECT f.*, t.tier, t.reasons
    FROM facts AS f
    CROSS JOIN params
    CROSS JOIN imnm_inputs AS i
    JOIN tier_rules AS t
        ON (t.tier_rule = 1 AND f.has_warning_label = 1 AND f.genetic_confirmed = 0
            AND f.ck_high = 1 AND (f.hmgcr = 0 OR f.srp = 0) AND f.hmgcr < 2 AND f.srp < 2)
        OR (t.tier_rule = 2 AND f.has_dystrophy = 1 AND (f.hmgcr = 2 OR f.srp = 2))
        OR (t.tier_rule = 3 AND (f.hmgcr = 2 OR f.srp = 2)
            AND f.steroid_alone_days >= params.review_days)
        OR (t.tier_rule = 4 AND i.measurement_missing = 1 AND f.has_warning_label = 1)
        OR (t.tier_rule = 5 AND i.condition_missing = 1 AND f.ck_high = 1)
        OR (t.tier_rule = 6 AND i.drug_missing = 1 AND (f.hmgcr = 2 OR f.srp = 2))
)
SELECT
    t.person_id, t.tier, t.reasons, t.sex, FLOOR(t.age_years) AS age_years, l.label_codes,
    ROUND(t.peak_u_per_l, 1) AS peak_ck_u_per_l,
    ROUND(t.peak_multiple, 2) AS peak_ck_multiple_of_uln,
    CASE t.hmgcr WHEN 2 THEN 'positive' WHEN 1 THEN 'negative' ELSE 'not tested' END
        AS anti_hmgcr,
    CASE t.srp WHEN 2 THEN 'positive' WHEN 1 THEN 'negative' ELSE 'not tested' END AS anti_srp,
    t.steroid_alone_days AS days_on_corticosteroid_alone
FROM tiers AS t
LEFT JOIN label_codes AS l ON l.person_id = t.person_id
ORDER BY t.tier, t.person_id
