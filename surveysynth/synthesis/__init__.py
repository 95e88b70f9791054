"""The sparse-cell synthesizer: inputs, fit, plan, sample, rules, assemble."""
