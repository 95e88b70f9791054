{#- The day time spine the dbt semantic layer requires (MetricFlow): the days of 1970-01, a tiny
    table. The release has no calendar date (waves are the survey's periods), so the semantic model
    release_domain_estimates puts every row on 1970-01-01 (its release_date). -#}
with days as (

    {{ dbt.date_spine('day', "cast('1970-01-01' as date)", "cast('1970-02-01' as date)") }}

),

final as (

    select cast(date_day as date) as date_day
    from days

)

select * from final
