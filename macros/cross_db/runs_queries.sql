{#- Whether this invocation may query the warehouse while compiling (the input checks, the raking
    tables, the calibration parameter count): when dbt executes nodes, never for `dbt docs generate`,
    `dbt parse` or `dbt ls`, so the docs build on an empty warehouse and run no gate query. -#}
{% macro runs_queries() %}
    {{ return(execute and (flags.WHICH | default('run', true)) not in ('generate', 'parse', 'list', 'ls', 'serve')) }}
{% endmacro %}
