{#- Quote a Python/Jinja value as a SQL literal (strings escaped, numbers as is). -#}
{% macro sql_literal(value) %}
    {%- if value is none -%}null
    {%- elif value is number -%}{{ value }}
    {%- else -%}'{{ (value | string).replace("'", "''") }}'
    {%- endif -%}
{% endmacro %}
