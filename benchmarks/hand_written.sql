-- The benchmark's tight hand-written screen (benchmarks/screen.py): one DuckDB query over
-- the CDM attached as `db`, written as an analyst would write it for a database known to be
-- complete (every table present, CONCEPT_ANCESTOR loaded, so no CONCEPT_RELATIONSHIP hops),
-- without coverage counts, checks of types or missing inputs, and without imnm's staging
-- (and without value_source_value, a column the benchmark's CDM does not have).
-- The code sets, unit factors, CK bands and answer words are imnm's lookup views (the
-- phenotype's data), created before the clock starts. It must return imnm's worklist row
-- for row; benchmarks/screen.py checks that.
WITH params AS (SELECT * FROM imnm_params),
roots AS (
    SELECT k.set_name, k.concept, c.concept_id
    FROM imnm_codes AS k JOIN imnm_vocabulary AS v ON v.system = k.system
    JOIN db.concept AS c ON c.vocabulary_id = v.vocabulary_id AND c.concept_code = k.code
    WHERE k.match_kind = 'exact'
    UNION ALL
    SELECT k.set_name, k.concept, c.concept_id
    FROM imnm_codes AS k JOIN imnm_vocabulary AS v ON v.system = k.system
    JOIN db.concept AS c ON c.vocabulary_id = v.vocabulary_id
        AND starts_with(c.concept_code, k.code)
    WHERE k.match_kind = 'prefix'
    UNION ALL
    SELECT 'drug', concept, concept_id FROM imnm_product_concepts
),
members AS (
    SELECT set_name, concept, concept_id FROM roots
    UNION
    SELECT r.set_name, r.concept, a.descendant_concept_id
    FROM roots AS r JOIN db.concept_ancestor AS a ON a.ancestor_concept_id = r.concept_id
    UNION
    SELECT r.set_name, r.concept, m.concept_id_2
    FROM roots AS r JOIN db.concept_relationship AS m
        ON m.concept_id_1 = r.concept_id AND m.relationship_id = 'Maps to'
),
sets AS (
    SELECT s.set_name, s.concept, s.concept_id,
           COALESCE(c.concept_code, CAST(s.concept_id AS VARCHAR)) AS code
    FROM members AS s LEFT JOIN db.concept AS c ON c.concept_id = s.concept_id
),
people AS (
    SELECT person_id,
           CASE gender_concept_id WHEN 8507 THEN 'male' WHEN 8532 THEN 'female'
                ELSE 'unknown' END AS sex,
           make_date(year_of_birth, COALESCE(month_of_birth, 7), COALESCE(day_of_birth, 1))
               AS birth_date
    FROM db.person, params
    WHERE year_of_birth IS NOT NULL
      AND date_diff('day', make_date(year_of_birth, COALESCE(month_of_birth, 7),
                                     COALESCE(day_of_birth, 1)), as_of) / 365.25
          <= max_age_years
),
labels AS (
    SELECT person_id,
           MAX(CASE WHEN set_name = 'dystrophy' THEN 1 ELSE 0 END) AS has_dystrophy,
           MAX(CASE WHEN set_name <> 'myositis' THEN 1 ELSE 0 END) AS has_warning_label,
           STRING_AGG(DISTINCT code, ';' ORDER BY code) AS label_codes
    FROM (
        SELECT co.person_id, s.set_name, s.code, co.condition_start_date AS d
        FROM db.condition_occurrence AS co JOIN sets AS s
            ON s.concept_id = co.condition_concept_id
        WHERE s.set_name IN ('dystrophy', 'unexplained_myopathy', 'myositis')
        UNION ALL
        SELECT co.person_id, s.set_name, s.code, co.condition_start_date
        FROM db.condition_occurrence AS co JOIN sets AS s
            ON s.concept_id = co.condition_source_concept_id
        WHERE s.set_name IN ('dystrophy', 'unexplained_myopathy', 'myositis')
    ), params
    WHERE d IS NULL OR d <= as_of
    GROUP BY person_id
),
hits AS (
    SELECT m.person_id, s.set_name, s.concept, m.value_as_number AS value, m.range_high,
           m.measurement_date AS date, m.unit_concept_id, m.value_as_concept_id,
           lower(NULLIF(trim(m.unit_source_value), '')) AS unit_text
    FROM db.measurement AS m JOIN sets AS s ON s.concept_id = m.measurement_concept_id, params
    WHERE s.set_name IN ('ck', 'antibody_test', 'genetic_test')
      AND (m.measurement_date IS NULL OR m.measurement_date <= as_of)
),
used AS (
    SELECT concept_id, concept_code, vocabulary_id, concept_name FROM db.concept
    WHERE concept_id IN (SELECT unit_concept_id FROM hits UNION
                         SELECT value_as_concept_id FROM hits)
),
results AS (
    SELECT h.person_id, h.set_name, h.concept, h.value, h.range_high, h.date,
           COALESCE(fs.factor, fc.factor) AS factor,
           CASE WHEN h.set_name <> 'ck' THEN COALESCE(
               vc.answer, ac.answer, wn.answer,
               CASE WHEN h.value > h.range_high THEN 'positive'
                    WHEN h.value IS NOT NULL AND h.range_high IS NOT NULL THEN 'negative' END)
           END AS result
    FROM hits AS h
    LEFT JOIN imnm_unit_factors AS fs ON fs.spelling = h.unit_text
    LEFT JOIN used AS u ON u.concept_id = h.unit_concept_id
    LEFT JOIN imnm_unit_factors AS fc ON fc.spelling = lower(u.concept_code)
    LEFT JOIN imnm_value_concepts AS vc ON vc.concept_id = h.value_as_concept_id
    LEFT JOIN used AS r ON r.concept_id = h.value_as_concept_id
    LEFT JOIN imnm_vocabulary AS rv ON rv.vocabulary_id = r.vocabulary_id
    LEFT JOIN imnm_answer_codes AS ac ON ac.system = rv.system AND ac.code = r.concept_code
    LEFT JOIN imnm_answer_words AS wn ON wn.text = lower(trim(r.concept_name))
),
ck AS (
    SELECT r.person_id, r.value * r.factor AS u_per_l,
           r.value * r.factor / COALESCE(r.range_high * r.factor, b.upper_limit) AS multiple
    FROM results AS r JOIN people AS p ON p.person_id = r.person_id, params
    LEFT JOIN imnm_ck_bands AS b
        ON b.sex = CASE WHEN p.sex = 'female' THEN 'female' ELSE 'male' END
       AND date_diff('day', p.birth_date, COALESCE(r.date, as_of)) / 365.25
           >= b.min_age_years
       AND date_diff('day', p.birth_date, COALESCE(r.date, as_of)) / 365.25
           < b.max_age_years
    WHERE r.set_name = 'ck' AND r.value >= 0 AND r.factor IS NOT NULL
),
ck_peak AS (
    SELECT person_id, MAX(u_per_l) AS peak, MAX(multiple) AS peak_multiple,
           MAX(CASE WHEN multiple > min_ck_multiple THEN 1 ELSE 0 END) AS ck_high
    FROM ck, params GROUP BY person_id
),
tests AS (
    SELECT person_id,
           MAX(CASE WHEN set_name = 'antibody_test' AND concept = 'HMGCR' THEN
               CASE result WHEN 'positive' THEN 2 WHEN 'negative' THEN 1 ELSE 0 END
               ELSE 0 END) AS hmgcr,
           MAX(CASE WHEN set_name = 'antibody_test' AND concept = 'SRP' THEN
               CASE result WHEN 'positive' THEN 2 WHEN 'negative' THEN 1 ELSE 0 END
               ELSE 0 END) AS srp,
           MAX(CASE WHEN set_name = 'genetic_test' AND result = 'positive' THEN 1 ELSE 0 END)
               AS genetic_confirmed
    FROM results WHERE set_name <> 'ck' GROUP BY person_id
),
drugs AS (
    SELECT person_id, concept, start_date, COALESCE(end_date, start_date) AS end_date
    FROM (
        SELECT d.person_id, s.concept, d.drug_exposure_start_date AS start_date,
               d.drug_exposure_end_date AS end_date
        FROM db.drug_exposure AS d JOIN sets AS s ON s.concept_id = d.drug_concept_id
        WHERE s.set_name = 'drug'
        UNION ALL
        SELECT d.person_id, s.concept, d.drug_exposure_start_date,
               d.drug_exposure_end_date
        FROM db.drug_exposure AS d JOIN sets AS s ON s.concept_id = d.drug_source_concept_id
        WHERE s.set_name = 'drug' AND d.drug_source_concept_id <> d.drug_concept_id
    ), params
    WHERE start_date <= as_of
),
steroid_alone AS (
    SELECT person_id, date_diff('day', MIN(start_date), LEAST(MAX(end_date), MAX(as_of)))
               AS days
    FROM drugs, params
    WHERE concept IN (SELECT concept FROM imnm_corticosteroids)
      AND person_id NOT IN (SELECT person_id FROM drugs
                            WHERE concept IN (SELECT concept FROM imnm_immunosuppressants))
    GROUP BY person_id
),
facts AS (
    SELECT p.person_id, COALESCE(l.has_dystrophy, 0) AS has_dystrophy,
           COALESCE(l.has_warning_label, 0) AS has_warning_label, l.label_codes,
           c.peak, c.peak_multiple, COALESCE(c.ck_high, 0) AS ck_high,
           COALESCE(t.hmgcr, 0) AS hmgcr, COALESCE(t.srp, 0) AS srp,
           COALESCE(t.genetic_confirmed, 0) AS genetic_confirmed, s.days
    FROM people AS p
    LEFT JOIN labels AS l ON l.person_id = p.person_id
    LEFT JOIN ck_peak AS c ON c.person_id = p.person_id
    LEFT JOIN tests AS t ON t.person_id = p.person_id
    LEFT JOIN steroid_alone AS s ON s.person_id = p.person_id
    WHERE l.person_id IS NOT NULL OR s.person_id IS NOT NULL  -- every tier needs one
)
SELECT person_id, tier, label_codes, ROUND(peak, 1) AS peak,
       ROUND(peak_multiple, 2) AS peak_multiple, hmgcr, srp, days
FROM (
    SELECT *, 'test_for_antibodies' AS tier FROM facts
    WHERE has_warning_label = 1 AND genetic_confirmed = 0 AND ck_high = 1
      AND (hmgcr = 0 OR srp = 0) AND hmgcr < 2 AND srp < 2
    UNION ALL
    SELECT *, 'review_dystrophy_label' FROM facts
    WHERE has_dystrophy = 1 AND (hmgcr = 2 OR srp = 2)
    UNION ALL
    SELECT facts.*, 'review_treatment' FROM facts, params
    WHERE (hmgcr = 2 OR srp = 2) AND days >= review_days
)
