{#- The columns of a built relation whose names are in `names` (matched case-insensitively, in the
    relation's order), as {'name': stored name, 'sql': quoted identifier, 'dtype': data type}.
    Release models pick columns by name from what was actually built, so a column the upstream
    model does not have is simply not released, and any name a warehouse allows is quoted. -#}
{% macro release_columns(relation, names=none) %}
    {%- set out = [] -%}
    {%- if not execute -%}{{ return(out) }}{%- endif -%}
    {%- set wanted = none if names is none else (names | map('lower') | list) -%}
    {%- for c in adapter.get_columns_in_relation(relation) -%}
        {%- if wanted is none or (c.name | lower) in wanted -%}
            {%- do out.append({'name': c.name, 'sql': surveysynth.quote_ident(c.name), 'dtype': c.dtype | lower,
                'numeric': c.is_numeric() or c.is_float() or c.is_integer()}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(out) }}
{% endmacro %}

{#- How the register auxiliaries reach the release: var ss_release_auxiliaries, banded (default) or drop. -#}
{% macro release_auxiliaries_mode() %}
    {%- set mode = var('ss_release_auxiliaries', 'banded') -%}
    {%- if mode not in ['banded', 'drop'] -%}
        {{ exceptions.raise_compiler_error("var ss_release_auxiliaries must be 'banded' or 'drop', got '" ~ mode ~ "'") }}
    {%- endif -%}
    {{ return(mode) }}
{% endmacro %}

{#- Number of quantile bands of each auxiliary (var ss_release_aux_bands, an integer from 2 to 20). -#}
{% macro release_aux_band_count() %}
    {%- set n = var('ss_release_aux_bands', 5) -%}
    {%- if n is not number or n < 2 or n > 20 or n != (n | int) -%}
        {{ exceptions.raise_compiler_error("var ss_release_aux_bands must be an integer from 2 to 20, got '" ~ n ~ "'") }}
    {%- endif -%}
    {{ return(n | int) }}
{% endmacro %}

{#- The frame auxiliaries as configured (var ss_frame_auxiliaries; null = none). -#}
{% macro release_aux_names() %}
    {%- set aux = var('ss_frame_auxiliaries', []) -%}
    {{ return(aux if aux is not none else []) }}
{% endmacro %}
