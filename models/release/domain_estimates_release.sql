{{ config(schema='surveysynth_release_staging') }}
{{ surveysynth.validate_config() }}
{#- The released domain estimates, staged (published by release_publish): domain_estimates_protected
    (domain_estimates with the threshold rule applied) as it stood when every gate passed, with
    release hygiene applied:
    - a suppressed row (method 'suppressed', whether for quality or by the threshold rule) carries
      no estimate values: every numeric column is null but the cell dimensions, the wave, the counts
      (n_*) and m. The estimate, SE and interval, and the direct and augmented (or any other) values
      shown alongside go, whatever the estimation layer names them; labels (method, grade,
      sdc_status) stay, so a reader sees what was withheld and why, and the reason says why without
      the figures the method rule quoted (its RMSEs and phi are withheld values);
    - release_id: the release (release_candidate) on every row. -#}
-- depends_on: {{ ref('release_gates') }}
{%- set src = ref('domain_estimates_protected') -%}
{%- set cols = surveysynth.release_columns(src) -%}
{%- set names = cols | map(attribute='name') | map('lower') | list -%}
{%- set structural = ((var('ss_cell_dims') | list) + ['wave', 'm']) | map('lower') | list -%}
{%- set conditions = [] -%}
{%- if 'method' in names %}{% do conditions.append("method = 'suppressed'") %}{% endif -%}
{%- if 'sdc_status' in names %}{% do conditions.append("sdc_status like 'suppressed%'") %}{% endif -%}
{%- set suppressed = '(' ~ (conditions | join(' or ') if conditions else 'false') ~ ')' -%}
{%- set final_cols = ['r.release_id'] -%}
{%- for c in cols -%}
    {%- set lname = c.name | lower -%}
    {%- if c.numeric and lname not in structural and not lname.startswith('n_') -%}
        {%- do final_cols.append('case when ' ~ suppressed ~ ' then null else e.' ~ c.sql ~ ' end as ' ~ c.sql) -%}
    {%- elif lname == 'reason' -%}
        {#- the method rule's reason quotes the estimated errors (RMSE direct, augmented, phi):
            withheld figures, so a suppressed row says why without them -#}
        {%- set why = ("case when e.grade = 'not_published' then 'withheld: interval too wide to publish (ss_grade_*)' "
            ~ "else 'withheld: disclosure control (sdc_status)' end") if 'grade' in names else "'withheld'" -%}
        {%- do final_cols.append("case when " ~ suppressed ~ " and e." ~ c.sql ~ " not like 'no estimate%' then "
            ~ why ~ " else e." ~ c.sql ~ " end as " ~ c.sql) -%}
    {%- else -%}
        {%- do final_cols.append('e.' ~ c.sql) -%}
    {%- endif -%}
{%- endfor %}

with estimates as (

    select * from {{ src }}

),

release as (

    select release_id from {{ ref('release_candidate') }}

),

final as (

    select
        {{ final_cols | join(',\n        ') }}
    from estimates as e
    cross join release as r

)

select * from final
