"""The release checks: fidelity, disclosure risk, the back-test and the gate reports."""
