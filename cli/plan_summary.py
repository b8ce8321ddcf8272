"""A Terraform plan as a reviewer reads it: what is added, changed, replaced and destroyed, by
resource type, with what needs a second look called out first (destroys and replacements, IAM).

Input: ``terraform show -json PLANFILE``. Output: Markdown (the pull request's job summary and its
plan comment, and ``./build.sh plan ENV`` locally).
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

# Resource types whose change alters who may do what: always called out, whatever the action.
_ACCESS_PREFIXES = ("aws_iam_", "aws_kms_key_policy", "aws_s3_bucket_policy", "aws_sqs_queue_policy", "aws_lambda_permission",
                    "aws_secretsmanager_secret_policy", "aws_sns_topic_policy")  # fmt: skip
_ORDER = ("create", "update", "replace", "delete")
_WORDS = {"create": "add", "update": "change", "replace": "replace", "delete": "destroy"}


def _action(actions: list[str]) -> str | None:
    """The one word for a resource change's actions (None: no change, or only a read)."""
    if actions in (["delete", "create"], ["create", "delete"]):
        return "replace"
    if actions in (["no-op"], ["read"]) or not actions:
        return None
    return actions[0] if actions[0] in _ORDER else None


def changes(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(action, resource type, address) of every managed resource the plan changes."""
    found = []
    for change in plan.get("resource_changes") or []:
        if change.get("mode", "managed") != "managed":
            continue
        action = _action(list((change.get("change") or {}).get("actions") or []))
        if action is not None:
            found.append((action, str(change.get("type")), str(change.get("address"))))
    return found


def summarize(plan: dict[str, Any], title: str = "Terraform plan") -> str:
    found = changes(plan)
    totals = Counter(action for action, _, _ in found)
    head = ", ".join(f"{totals.get(a, 0)} to {_WORDS[a]}" for a in _ORDER)
    lines = [f"### {title}", "", f"**{head}**" if found else "**No changes.**", ""]
    risky = [(a, t, addr) for a, t, addr in found if a in ("delete", "replace")]
    access = [(a, t, addr) for a, t, addr in found if t.startswith(_ACCESS_PREFIXES)]
    if risky:
        lines += ["**Destroyed or replaced (data may be lost):**", ""]
        lines += [f"- {_WORDS[a]}: `{addr}`" for a, _, addr in sorted(risky)] + [""]
    if access:
        lines += ["**Access changes (IAM, key, bucket, queue policies, Lambda permissions):**", ""]
        lines += [f"- {_WORDS[a]}: `{addr}`" for a, _, addr in sorted(access, key=lambda x: x[2])] + [""]
    if found:
        by_type: dict[str, Counter[str]] = defaultdict(Counter)
        for action, kind, _ in found:
            by_type[kind][action] += 1
        lines += ["| Resource type | " + " | ".join(_WORDS[a] for a in _ORDER) + " |", "|---|" + "---:|" * len(_ORDER)]
        for kind in sorted(by_type):
            lines.append(f"| `{kind}` | " + " | ".join(str(by_type[kind].get(a, 0) or "") for a in _ORDER) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m cli.plan_summary PLAN.json [TITLE]   (PLAN.json: terraform show -json PLANFILE)", file=sys.stderr)
        return 2
    try:
        plan = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"cannot read the plan {args[0]}: {exc}", file=sys.stderr)
        return 1
    print(summarize(plan, *args[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
