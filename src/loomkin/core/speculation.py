"""Speculation, the pure part (SPEC §3.7): payloads, exact checks, and when to speculate.

How this works and why:

* **A payload to assume about.** A predecessor's real output is read as a flat mapping: its
  hand-off fields (``result``, ``files_changed``, ``decisions``, ``actions_taken``,
  ``open_questions``) and a milestone's ``note``, plus every ``name: value`` or
  ``name = value`` line of its decisions, result or note as its own key. So a coder writing
  "``parse_config = def parse_config(path: str) -> Config``" into its decisions gives the key
  ``parse_config`` a dependent can have assumed. Structured assumptions are compared exactly
  (strings after trimming, lists element by element); a key missing from the payload fails.
* **When to speculate.** The probability that a speculation's assumptions hold is a
  Beta-Binomial posterior per (dependency kind, role): ``(α + held) / (α + β + held + failed)``
  with a configurable prior, the other pairs' outcomes added at half weight (partial
  pooling). Speculating saves, with probability p, the critical-path time starting the task
  now gains (the caller forecasts it: zero for a task with slack) and wastes, with
  probability 1 − p, the work done before the check; both are priced (waiting at
  ``usd_per_hour``, work at ``usd_per_work_hour``), and the policy speculates only when
  ``p × saving − (1 − p) × waste`` is positive, p is above a floor, and the speculation
  budget has room for the waste at a cautious p (mean less one standard deviation).
* **The budget ramps** (:func:`budget_ramp`): only a part of ``budget_share`` is open until
  guesses have been seen to hold — ``(1 + held) ÷ (1 + ramp_holds)`` of it — so the first
  bets, made on no evidence, are small ones, and bigger bets open up as the posterior firms
  at a useful hit rate. Failures open nothing: a policy whose guesses fail keeps to small
  bets and stops at the ``min_p`` floor.
* **A stake limit, at face value** (:func:`stake_room_s`): the budget prices a bet at its
  expected loss, so after one guess held by chance (the posterior at 2/3) it lets through a
  bet three times its size, and a failed bet then loses its whole stake. So no bet is
  placed whose whole stake, with the whole stakes of the unconfirmed bets running and the
  waste so far, exceeds ``stake_share`` of the known work plus the work done ahead on
  guesses that held; ``budget_share`` more opens once a hit rate below ``min_p`` has become
  unlikely (``stake_doubt``) on all the session's guesses pooled — two holds in two from
  the flat prior (P(rate < 0.5) = 1/8), not one, which a hit rate of 0.2 gives by chance
  in 20 % of sessions (two in two: 4 %); a failure closes it again until more holds. A bet
  too big now is placed later, once its check is near enough that its stake fits (the
  part of its wait it can still save).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.events.base import JSON

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


__all__ = [
    "Decision",
    "HitRates",
    "SpeculationCosts",
    "SpeculationPolicy",
    "Verdict",
    "beta_cdf",
    "budget_ramp",
    "decide",
    "handoff_payload",
    "payload_of",
    "same_value",
    "stake_room_s",
]

_PAIR = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(?:=|:)\s*(.+?)\s*$")


def _pairs(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _PAIR.match(line)
        if match is not None:
            found.setdefault(match.group(1), match.group(2))
    return found


def handoff_payload(
    *,
    result: str | None = None,
    files_changed: Sequence[str] = (),
    decisions: Sequence[str] = (),
    actions_taken: Sequence[str] = (),
    open_questions: Sequence[str] = (),
    note: str = "",
) -> dict[str, JSON]:
    """The real output of a predecessor as the flat mapping assumptions are checked against."""
    payload: dict[str, JSON] = {}
    for text in (note, result or "", *decisions):
        for key, value in _pairs(text).items():
            payload.setdefault(key, value)
    payload.update(
        {
            "result": result or "",
            "files_changed": tuple(sorted(files_changed)),
            "decisions": tuple(decisions),
            "actions_taken": tuple(actions_taken),
            "open_questions": tuple(open_questions),
        }
    )
    if note:
        payload["note"] = note
    return payload


def same_value(assumed: JSON, actual: JSON) -> bool:
    """Exact comparison of an assumed value with the real one (strings trimmed, lists in order).

    ``files_changed`` style lists compare as sorted when the assumption is a list: the order
    in which files were changed is not part of what a dependent can rely on.
    """
    if isinstance(assumed, str) and isinstance(actual, str):
        return assumed.strip() == actual.strip()
    if isinstance(assumed, list | tuple) and isinstance(actual, list | tuple):
        left = [str(v).strip() for v in assumed]
        right = [str(v).strip() for v in actual]
        return left == right or sorted(left) == sorted(right)
    if isinstance(assumed, str) and not isinstance(actual, str):
        return False
    return assumed == actual


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Whether one assumption held, and why (the actual value or the judge's reasoning)."""

    assumption_id: str
    holds: bool
    actual: JSON = None
    reasoning: str = ""

    def to_json(self) -> dict[str, JSON]:
        """The verdict as an event payload entry."""
        return {
            "assumption_id": self.assumption_id,
            "holds": self.holds,
            "actual": self.actual,
            "reasoning": self.reasoning,
        }


@dataclass(slots=True)
class HitRates:
    """Beta-Binomial posterior of "assumptions hold", per (dependency kind, role)."""

    alpha: float = 1.0
    beta: float = 1.0
    pool: float = 0.5
    """Weight of the other (kind, role) pairs' outcomes in a pair's posterior."""
    outcomes: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    """(kind, role) → (held, failed)."""

    def record(self, kind: str, role: str, *, held: bool) -> None:
        """Count one validated speculation."""
        h, f = self.outcomes.get((kind, role), (0, 0))
        self.outcomes[(kind, role)] = (h + 1, f) if held else (h, f + 1)

    def held(self) -> int:
        """Guesses that held so far, over every pair."""
        return sum(h for h, _f in self.outcomes.values())

    def counts(self, kind: str, role: str) -> tuple[int, int]:
        """(held, failed) so far for this kind and role."""
        return self.outcomes.get((kind, role), (0, 0))

    def mean(self, kind: str, role: str) -> float:
        """Posterior mean of the hit rate of (kind, role).

        Outcomes of the other kinds and roles count at ``pool`` weight (partial pooling): a
        pair never seen starts from what the session learnt so far, not from the bare prior.
        """
        h, f = self.counts(kind, role)
        all_h = sum(c[0] for c in self.outcomes.values()) - h
        all_f = sum(c[1] for c in self.outcomes.values()) - f
        held = self.alpha + h + self.pool * all_h
        failed = self.beta + f + self.pool * all_f
        return held / (held + failed)

    def cautious(self, kind: str, role: str) -> float:
        """The posterior mean less one standard deviation (what waste is budgeted at).

        With little evidence the spread is wide, so early bets are sized as if most of them
        failed; as outcomes accumulate the two figures meet.
        """
        a, b = self._shape(kind, role)
        spread = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        return max(0.0, a / (a + b) - spread)

    def hopeful(self, kind: str, role: str) -> float:
        """The posterior mean plus one standard deviation (what the floor is checked at).

        One early failure out of one leaves the mean at 1/3, yet a hit rate of 0.8 is still
        quite plausible: the policy stops only once the evidence makes a hit rate at the
        floor unlikely (two failures and no hold from the flat prior, say), and the budget
        ramp keeps the bets it makes meanwhile small.
        """
        a, b = self._shape(kind, role)
        spread = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        return min(1.0, a / (a + b) + spread)

    def doubt(self, p: float) -> float:
        """How likely a hit rate below ``p`` still is, on every pair's outcomes pooled.

        The posterior probability ``P(rate < p)`` from all the session's guesses at full
        weight: a session whose guesses held 3 times out of 3 from the flat prior leaves
        ``p = 0.5`` at 6 %, 2 out of 2 at 12.5 %, 1 out of 1 at 25 %.
        """
        held = sum(c[0] for c in self.outcomes.values())
        failed = sum(c[1] for c in self.outcomes.values())
        return beta_cdf(p, self.alpha + held, self.beta + failed)

    def _shape(self, kind: str, role: str) -> tuple[float, float]:
        h, f = self.counts(kind, role)
        all_h = sum(c[0] for c in self.outcomes.values()) - h
        all_f = sum(c[1] for c in self.outcomes.values()) - f
        return self.alpha + h + self.pool * all_h, self.beta + f + self.pool * all_f


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` (the Beta(a, b) CDF at x)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 200):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationPolicy:
    """Knobs of the expected-value decision (``[speculation]`` in ``loomkin.toml``)."""

    enabled: bool = True
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    min_p: float = 0.5
    """Never speculate below this posterior mean, whatever the prices say."""
    usd_per_hour: float = 20.0
    """What an hour of waiting on the critical path is worth."""
    usd_per_work_hour: float = 4.0
    """What an hour of an agent's work costs in model spend."""
    budget_share: float = 0.06
    """Share of the session budget (or of the session's known work) speculation may waste."""
    max_active: int = 4
    """Speculations running at once, at most (fewer while little is known)."""
    ramp_holds: int = 2
    """Guesses seen to hold after which the whole ``budget_share`` is open (0: at once)."""
    stake_share: float = 0.02
    """Share of the known work speculation may lose outright (whole stakes) on no evidence."""
    stake_doubt: float = 0.13
    """Once a hit rate below ``min_p`` is no likelier than this, ``budget_share`` more opens."""
    auto: bool = False
    """Let the scheduler start speculations on idle agents (else only the tools and the API)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationCosts:
    """What one candidate speculation would save and risk."""

    saving_s: float
    """Critical-path seconds saved if the assumptions hold (0 for a task with slack)."""
    work_s: float
    """The speculative work at risk (the task's own work, up to its check)."""
    budget_left_usd: float
    """Speculation budget open now (see :func:`budget_ramp`), less waste and risk so far."""
    probe: bool = False
    """A bet made to learn the hit rate, not to save time (see :func:`decide`)."""
    stake_room_s: float | None = None
    """Work speculation may still lose outright (None: no limit; see :func:`stake_room_s`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The outcome of :func:`decide`, with every number it used."""

    speculate: bool
    p_hold: float
    expected_saving_s: float
    expected_waste_usd: float
    value_usd: float
    reason: str
    saving_if_held_s: float = 0.0
    at_stake_s: float = 0.0
    budget_left_usd: float = 0.0
    too_big: bool = False
    """Worth it, but its whole stake exceeds what may be lost outright (it may fit later)."""


def budget_ramp(policy: SpeculationPolicy, held: int) -> float:
    """The share of the speculation budget open once ``held`` guesses held (0–1]."""
    if policy.ramp_holds <= 0:
        return 1.0
    return min(1.0, (1 + max(0, held)) / (1 + policy.ramp_holds))


def stake_room_s(
    policy: SpeculationPolicy,
    rates: HitRates,
    *,
    work_s: float,
    held_s: float,
    wasted_s: float,
    exposed_s: float,
) -> float:
    """Work speculation may still lose outright: no bet with a larger stake is placed.

    ``stake_share`` of the session's known work (``work_s``), plus the work done ahead on
    guesses that held (``held_s``: what they earned), plus ``budget_share`` of the work once
    a hit rate below ``min_p`` is no likelier than ``stake_doubt`` on every guess so far;
    less the waste so far and the whole stakes of the unconfirmed bets running
    (``exposed_s``). The bound is at face value: were every running bet to fail, the waste
    stays within the allowance. Negative when it is already overdrawn.
    """
    allowance = policy.stake_share * work_s + held_s
    if rates.doubt(policy.min_p) <= policy.stake_doubt:
        allowance += policy.budget_share * work_s
    return allowance - wasted_s - exposed_s


def decide(
    policy: SpeculationPolicy,
    p: float,
    costs: SpeculationCosts,
    *,
    p_low: float | None = None,
    p_high: float | None = None,
) -> Decision:
    """The expected-value decision for one candidate (pure; the caller records it).

    ``p`` is the posterior mean, which prices the bet; ``p_low`` (default ``p``) a cautious
    estimate the budget check uses, so that early bets, made on little evidence, stay small;
    ``p_high`` (default ``p``) a hopeful one the ``min_p`` floor is checked at, so that the
    policy stops when a hit rate at the floor has become unlikely, not at the first failure.

    A bet whose whole stake exceeds ``costs.stake_room_s`` (:func:`stake_room_s`) is refused
    whatever its odds; ``too_big`` then says it may fit later, nearer its check.

    A **probe** (``costs.probe``) saves nothing — the task has slack — and is made only to
    learn the hit rate before bigger bets: it passes the same floor and budget checks, and
    its value (its expected waste, negative) is not required to be positive. A failed
    probe delays nothing: the task is re-queued at its check, when it would have started.
    """
    saving_s = p * costs.saving_s
    waste_usd = (1.0 - p) * costs.work_s / 3600.0 * policy.usd_per_work_hour
    risk_usd = (1.0 - (p if p_low is None else p_low)) * costs.work_s / 3600.0
    risk_usd *= policy.usd_per_work_hour
    value = saving_s / 3600.0 * policy.usd_per_hour - waste_usd

    def out(ok: bool, reason: str, *, too_big: bool = False) -> Decision:
        return Decision(
            speculate=ok,
            p_hold=p,
            expected_saving_s=saving_s,
            expected_waste_usd=waste_usd,
            value_usd=value,
            reason=reason,
            saving_if_held_s=costs.saving_s,
            at_stake_s=costs.work_s,
            budget_left_usd=costs.budget_left_usd,
            too_big=too_big,
        )

    if not policy.enabled:
        return out(False, "speculation is disabled")
    hope = p if p_high is None else max(p, p_high)
    if hope < policy.min_p:
        return out(
            False, f"hit rate {p:.2f} (at best {hope:.2f}) is below the floor {policy.min_p:.2f}"
        )
    if costs.saving_s <= 0 and not costs.probe:
        return out(False, "the task has slack: starting it early would not end the work sooner")
    if costs.stake_room_s is not None and costs.work_s > costs.stake_room_s:
        return out(
            False,
            f"the whole stake ({costs.work_s:.0f} s of work) exceeds what speculation may "
            f"still lose outright ({max(0.0, costs.stake_room_s):.0f} s)",
            too_big=costs.saving_s > 0,
        )
    if risk_usd > costs.budget_left_usd:
        return out(False, "the speculation budget has no room for the expected waste")
    if costs.probe:
        return out(True, f"probe to learn the hit rate (now {p:.2f}): the task has slack")
    if value <= 0:
        return out(False, f"expected value {value:.4f} USD is not positive")
    return out(True, f"expected value {value:.4f} USD at hit rate {p:.2f}")


def payload_of(mapping: Mapping[str, JSON], key: str) -> tuple[bool, JSON]:
    """``(present, value)`` of ``key`` in a payload."""
    return (key in mapping, mapping.get(key))
