{#- Print the failing rows' messages of a gate test to the dbt log and console, so a failed build
    says which margin, category, class or unit broke the rule, not only how many rows failed.
    The first `limit` rows in `order_by` order are printed (the most telling first).
    Runs only when the model exists (a plain `dbt compile` before the first build skips it). -#}
{% macro report_failures(test_name, model, validation_sql, message_expr, order_by=none, limit=20) %}
    {%- if execute and load_relation(model) is not none -%}
        {%- set rows = run_query('select ' ~ message_expr ~ ' as message from (' ~ validation_sql ~ ') as failing'
            ~ (' order by ' ~ order_by if order_by else '') ~ ' limit ' ~ limit) -%}
        {%- for r in rows -%}
            {%- do log('surveysynth gate ' ~ test_name ~ ' FAILED: ' ~ r[0], info=True) -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
