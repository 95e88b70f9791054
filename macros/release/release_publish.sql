{#- Publishing the release: the staged release tables (built in the release staging schema, see
    release_schema.sql) are copied into the release schema in ONE transaction, so readers of the
    release schema see the whole previous release or the whole new one, never a mix.

    Why a staged copy swapped in one transaction (and not a release id that views point at): DuckDB's
    DDL is transactional, so dropping and re-creating four tables between BEGIN and COMMIT is a
    single atomic change, and DuckDB writes a transaction to its write-ahead log only at COMMIT; a
    process killed before COMMIT leaves nothing of it, and the file reopens at the last committed
    release. The release schema then holds plain tables (any tool reads them, nothing else sits
    there), where a pointer design would keep every past release in it behind views. PostgreSQL
    has transactional DDL too; Spark has no multi-table transactions (see spark__ below).

    Before anything is copied, the model's own query (release_publish.sql) lists the release ids
    found in the staged tables; the publish stops unless there is exactly one, carried by the staged
    manifest's single row. A run killed half way through staging leaves tables of two releases
    there, and they are then refused instead of published. -#}
{% materialization release_publish, default %}
    {%- set staged = surveysynth.release_staged_relations(config.get('release_tables')) -%}
    {%- set published = [] -%}
    {%- for rel in staged -%}
        {%- do published.append(api.Relation.create(database=this.database, schema=this.schema,
            identifier=rel.identifier, type='table')) -%}
    {%- endfor -%}
    {%- set release_id = surveysynth.release_staged_id(compiled_code) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {% do adapter.create_schema(api.Relation.create(database=this.database, schema=this.schema)) %}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {{ surveysynth.release_publish_statements(staged, published) }}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {% do log('surveysynth release ' ~ release_id ~ ' published to ' ~ this.schema ~ ': '
        ~ (published | map(attribute='identifier') | join(', ')), info=True) %}
    {{ return({'relations': published}) }}
{% endmaterialization %}

{#- The staged relations of the named release models (their dbt nodes). -#}
{% macro release_staged_relations(names) %}
    {%- set out = [] -%}
    {%- for name in names -%}
        {%- set found = [] -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and node.name == name and node.package_name == model.package_name -%}
                {%- do found.append(api.Relation.create(database=node.database, schema=node.schema,
                    identifier=node.alias, type='table')) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if found | length != 1 -%}
            {{ exceptions.raise_compiler_error('release_publish: no model named ' ~ name ~ ' to publish') }}
        {%- endif -%}
        {%- do out.append(found[0]) -%}
    {%- endfor -%}
    {{ return(out) }}
{% endmacro %}

{#- Runs `guard_sql` (staged_table, release_id, n_rows per staged table and release id) and returns
    the single release id, or stops the run naming what is mixed. -#}
{% macro release_staged_id(guard_sql) %}
    {%- set rows = run_query(guard_sql) -%}
    {%- set ids = [] -%}
    {%- set manifest_rows = [] -%}
    {%- for r in rows -%}
        {%- if r[1] not in ids %}{% do ids.append(r[1]) %}{% endif -%}
        {%- if r[0] == 'release_manifest' %}{% do manifest_rows.append(r[2]) %}{% endif -%}
    {%- endfor -%}
    {%- if ids | length != 1 or manifest_rows != [1] -%}
        {%- set found = [] -%}
        {%- for r in rows %}{% do found.append(r[0] ~ ': ' ~ r[1] ~ ' (' ~ r[2] ~ ' rows)') %}{% endfor -%}
        {{ exceptions.raise_compiler_error(
            'release_publish: the staged release tables do not hold one release (' ~ (found | join('; '))
            ~ '), e.g. after a run stopped while staging. Nothing was published; the previous release '
            ~ 'stays. Rebuild the release: dbt build --select release_candidate+') }}
    {%- endif -%}
    {{ return(ids[0]) }}
{% endmacro %}

{#- Replace each published table by its staged copy, inside the transaction the materialization
    commits. One statement holds every copy (written to target/run as the model's SQL). -#}
{% macro release_publish_statements(staged, published) %}
    {{ return(adapter.dispatch('release_publish_statements', 'surveysynth')(staged, published)) }}
{% endmacro %}

{% macro default__release_publish_statements(staged, published) %}
    {%- set parts = [] -%}
    {%- for i in range(staged | length) -%}
        {%- do parts.append('drop table if exists ' ~ published[i]) -%}
        {%- do parts.append('create table ' ~ published[i] ~ ' as select * from ' ~ staged[i]) -%}
    {%- endfor -%}
    {% call statement('main') -%}
        {{ parts | join(';\n') }}
    {%- endcall %}
{% endmacro %}

{#- Spark runs one statement per call and has no transaction across tables: each table is replaced
    in turn (atomic per table only). The staged-id check above still refuses a mixed staging. -#}
{% macro spark__release_publish_statements(staged, published) %}
    {%- for i in range(staged | length) -%}
        {% call statement('main' if loop.last else 'publish_' ~ i) -%}
            create or replace table {{ published[i] }} using parquet as select * from {{ staged[i] }}
        {%- endcall %}
    {%- endfor -%}
{% endmacro %}
