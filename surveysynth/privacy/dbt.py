"""dbt glue of DP mode: the synthetic_microdata branch and the privacy_ledger model.

The DP vars reach the Python models as one JSON config string, ``ss_dp_vars`` (rendered in
python_models/_privacy.yml and on synthetic_microdata's config), beside the project's ``ss_vars``.
The synthetic_microdata run saves its ledger next to its manifest (``<run id>.privacy_ledger.json``
in the run directory); privacy_ledger reads it back by the run id the synthetic rows carry.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from surveysynth.privacy.ledger import LEDGER_COLUMNS, empty_ledger

DP_VARS = (
    "ss_privacy_mode",
    "ss_dp_epsilon",
    "ss_dp_delta",
    "ss_dp_spend_epsilon",
    "ss_dp_bounds",
    "ss_dp_pool_by",
    "ss_dp_waves",
)


def dp_vars(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def dp_enabled(dpv: dict[str, Any]) -> bool:
    mode = dpv.get("ss_privacy_mode")
    if mode in (None, False, "off"):
        return False
    if mode != "dp":
        raise ValueError(f"ss_privacy_mode must be 'off' or 'dp', not {mode!r}")
    return True


def dp_synthesize_model(
    v: dict[str, Any], dpv: dict[str, Any], responses, frame, support, weights=None
) -> pd.DataFrame:
    """Body of synthetic_microdata in DP mode: records from the noisy statistics only."""
    from surveysynth.dbt_glue import _inputs, _progress_to_terminal, _run_dir, synth_config
    from surveysynth.privacy.api import dp_synthesize
    from surveysynth.privacy.measure import DPSettings
    from surveysynth.synthesis.api import manifest

    _progress_to_terminal()
    r, f, s = _inputs(v, responses, frame, support, weights)
    config = synth_config(v)
    out, ledger, _ = dp_synthesize(r, f, s, config, DPSettings.from_vars(dpv, config))
    rid = str(out["synth_run_id"].iloc[0]) if len(out) else "dp-empty"
    man = manifest(r, f, s, config, output=out)
    man.update(synth_run_id=rid, synth_method="dp_fay_herriot")
    run_dir = _run_dir(v)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / f"{rid}.json").write_text(json.dumps(man))
    (run_dir / f"{rid}.privacy_ledger.json").write_text(ledger.to_json(orient="records"))
    return out


def ledger_model(v: dict[str, Any], dpv: dict[str, Any], synthetic) -> pd.DataFrame:
    """Body of privacy_ledger: the run's ledger (DP mode), or no rows (privacy mode off)."""
    from surveysynth.dbt_glue import _run_dir, to_pandas

    if not dp_enabled(dpv):
        df = empty_ledger()
        df.insert(0, "synth_run_id", pd.Series(dtype=object))
        return df.assign(epsilon_limit=pd.Series(dtype=float), delta_limit=pd.Series(dtype=float))
    syn = to_pandas(synthetic)
    ids = syn["synth_run_id"].dropna().unique() if "synth_run_id" in syn.columns else []
    rid = str(ids[0]) if len(ids) == 1 else "dp-empty"
    path = _run_dir(v) / f"{rid}.privacy_ledger.json"
    if not path.exists():
        raise RuntimeError(
            f"privacy_ledger: no ledger saved for synthesis run {rid} ({path}); "
            "rebuild synthetic_microdata in DP mode"
        )
    df = pd.DataFrame(json.loads(path.read_text()), columns=LEDGER_COLUMNS)
    df.insert(0, "synth_run_id", rid)
    df["epsilon_limit"] = float(dpv.get("ss_dp_epsilon"))
    df["delta_limit"] = float(dpv.get("ss_dp_delta"))
    return df


def privacy_budget(ledger: pd.DataFrame) -> str:
    """The release manifest's record of the budget spent (JSON): mode, composed rho, epsilon at
    delta, the limits and the number of measurements."""
    total = ledger[ledger["is_total"].astype(bool)] if len(ledger) else ledger
    if not len(total):
        return json.dumps({"mode": "off"})
    t = total.iloc[0]
    return json.dumps(
        {
            "mode": "dp",
            "composition": "zCDP (rho adds up), converted to (epsilon, delta) by opendp",
            "rho": float(t["rho"]),
            "epsilon": float(t["epsilon"]),
            "delta": float(t["delta"]),
            "epsilon_limit": float(t["epsilon_limit"]),
            "delta_limit": float(t["delta_limit"]),
            "measurements": int(len(ledger) - 1),
        }
    )
