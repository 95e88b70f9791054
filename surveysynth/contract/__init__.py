"""The input contract: typed configuration from the dbt vars, input checks, business rules."""
