{#- Identifiers (column names from vars) as SQL. A plain name (letters, digits, underscores, not
    starting with a digit, not a reserved word) is written as is, so it keeps each engine's usual
    case rules; any other name (a hyphen, a space, an accent, a quote, a reserved word such as
    `order`) is quoted with the engine's identifier quote, embedded quotes doubled. Idempotent:
    an identifier this macro quoted comes back unchanged. -#}
{% macro ident(name) %}
    {%- set name = name | string -%}
    {%- if surveysynth.is_quoted_ident(name) or surveysynth.is_plain_ident(name) -%}
        {{ return(name) }}
    {%- endif -%}
    {{ return(surveysynth.quote_ident(name)) }}
{% endmacro %}

{#- A list of names as identifiers. -#}
{% macro idents(names) %}
    {%- set out = [] -%}
    {%- for n in names or [] %}{% do out.append(surveysynth.ident(n)) %}{% endfor -%}
    {{ return(out) }}
{% endmacro %}

{#- The name an identifier stands for (ident() undone), for labels and messages. -#}
{% macro ident_name(ident) %}
    {%- set ident = ident | string -%}
    {%- if not surveysynth.is_quoted_ident(ident) -%}{{ return(ident) }}{%- endif -%}
    {%- set q = surveysynth.ident_quote_char() -%}
    {{ return(ident[1:-1].replace(q ~ q, q)) }}
{% endmacro %}

{% macro is_plain_ident(name) %}
    {%- set plain = modules.re.match('^[A-Za-z_][A-Za-z0-9_]*$', name) is not none -%}
    {{ return(plain and (name | lower) not in surveysynth.reserved_words()) }}
{% endmacro %}

{% macro is_quoted_ident(text) %}
    {%- set q = surveysynth.ident_quote_char() -%}
    {%- if text | length < 3 or not text.startswith(q) or not text.endswith(q) -%}{{ return(false) }}{%- endif -%}
    {{ return(q not in text[1:-1].replace(q ~ q, '')) }}
{% endmacro %}

{% macro quote_ident(name) %}
    {%- set q = surveysynth.ident_quote_char() -%}
    {{ return(q ~ (name | string).replace(q, q ~ q) ~ q) }}
{% endmacro %}

{#- The engine's identifier quote: the adapter's own (" on DuckDB and PostgreSQL, ` on Spark). -#}
{% macro ident_quote_char() %}
    {{ return(adapter.quote('x')[0]) }}
{% endmacro %}

{#- Words that cannot be a bare column name on at least one engine (DuckDB's reserved and
    type/function keywords, PostgreSQL's and Spark's ANSI reserved words). -#}
{% macro reserved_words() %}
    {{ return([
        'all', 'analyse', 'analyze', 'and', 'anti', 'any', 'array', 'as', 'asc', 'asof', 'asymmetric',
        'at', 'authorization', 'between', 'binary', 'both', 'by', 'case', 'cast', 'check', 'collate',
        'collation', 'column', 'columns', 'concurrently', 'constraint', 'create', 'cross', 'cube',
        'current_catalog', 'current_date', 'current_role', 'current_schema', 'current_time',
        'current_timestamp', 'current_user', 'default', 'deferrable', 'delete', 'desc', 'describe',
        'distinct', 'do', 'drop', 'else', 'end', 'escape', 'except', 'exists', 'false', 'fetch',
        'filter', 'for', 'foreign', 'freeze', 'from', 'full', 'generated', 'glob', 'grant', 'group',
        'grouping', 'having', 'ilike', 'in', 'initially', 'inner', 'insert', 'intersect', 'interval',
        'into', 'is', 'isnull', 'join', 'lambda', 'lateral', 'leading', 'left', 'like', 'limit',
        'localtime', 'localtimestamp', 'map', 'natural', 'not', 'notnull', 'null', 'offset', 'on',
        'only', 'or', 'order', 'outer', 'over', 'overlaps', 'partition', 'pivot', 'pivot_longer',
        'pivot_wider', 'placing', 'positional', 'primary', 'qualify', 'range', 'references',
        'returning', 'right', 'rollup', 'row', 'rows', 'select', 'semi', 'session_user', 'show',
        'similar', 'some', 'struct', 'summarize', 'symmetric', 'table', 'tablesample', 'then', 'to',
        'trailing', 'true', 'try_cast', 'tuple', 'union', 'unique', 'unknown', 'unpack', 'unpivot',
        'update', 'user', 'using', 'values', 'variadic', 'verbose', 'when', 'where', 'window', 'with'
    ]) }}
{% endmacro %}
