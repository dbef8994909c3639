"""Before a pulled module runs without --policy: when it asks for more than tracing
(an XDP, tc, cgroup, LSM, struct_ops... program), its policy template is shown and the
user asked; without a terminal the run is refused unless --yes. What a module asks is
read from the layer itself with `wasm-bpf inspect` (the artifact's config is the
author's word, not evidence) and kept beside it in the cache."""
import json
import sys
from pathlib import Path
from typing import Any, Dict

from . import DistributionError

# Program types that only observe: tracepoints, kprobes/uprobes, fentry/fexit, perf events.
TRACING_TYPES = frozenset({"tracepoint", "raw_tracepoint", "tracing", "kprobe", "perf_event"})


def _report(path: str) -> Dict[str, Any]:
    folder = Path(path).parent  # files/HEX: the report is files/HEX.inspect.json, out of the layer's name space
    saved = folder.with_name(folder.name + ".inspect.json")
    try:
        return json.loads(saved.read_text())
    except (OSError, ValueError):
        pass
    from ..errors import WasmBpfError
    from ..inspect import inspect_module, report_policy_template
    try:
        report = inspect_module(path)
    except WasmBpfError as exc:
        raise DistributionError(str(exc)) from None
    programs = [p for o in report.objects for p in o.programs if p.autoload]
    result = {"types": sorted({p.type for p in programs}), "template": report_policy_template(report)}
    saved.write_text(json.dumps(result))
    return result


def confirm(where: str, path: str, assume_yes: bool) -> None:
    """Returns when the module may run; raises DistributionError (one line) when not."""
    if assume_yes:
        return
    report = _report(path)
    beyond = [t for t in report["types"] if t not in TRACING_TYPES]
    if not beyond:
        return
    what = f"{where} asks for more than tracing (program types: {', '.join(beyond)})"
    if not sys.stdin.isatty():
        raise DistributionError(f"{what}; run it with --yes, or with --policy FILE "
                                "(`wasm-bpf inspect --policy-template` writes one)")
    sys.stderr.write(f"{what}. What it would need, as a policy:\n\n{report['template']}\n")
    sys.stderr.write("Run it? [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise DistributionError(f"{where}: not run (answered no)")
