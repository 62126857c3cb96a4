"""Prints what loadtest/delivery.sh measured, from the reports in its OUT
directory: usage: delivery-summary.py OUT"""

import json
import re
import sys
from pathlib import Path


def load(out, name):
    path = out / name
    return json.loads(path.read_text()) if path.exists() else None


def metrics(out, name):
    """{(metric, labels): value} from a saved /metrics text."""
    path = out / name
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            m = re.match(r"^(\w+)(\{[^}]*\})? (\S+)$", line)
            if m:
                values[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return values


def lags(d):
    return f"{d['p50']:.1f} / {d['p95']:.1f} / {d['p99']:.1f} / {d['max']:.1f} ms"


def offered(o):
    rate = o["offered"] / o["offered_in_s"] if o["offered_in_s"] else 0
    return (f"offered {o['offered']} in {o['offered_in_s']:.1f} s ({rate:.0f}/s), "
            f"answers {o['statuses']}, answer p50/p95/p99/max {lags(o['answer_ms'])}, "
            f"waited for a slot {o['waited_for_a_slot']}")


def delivered(k):
    return (f"received {k['received']}, distinct {k['distinct']}, duplicates {k['duplicates']}, "
            f"problems {k['problems']}, connections {k['connections']}, "
            f"rate {k['rate_per_s']:.0f}/s (first to last arrival), "
            f"lag p50/p95/p99/max {lags(k['lag_ms'])}")


def by_label(m, metric):
    """The non-zero counts of `metric` by its `outcome` label."""
    counts = {}
    for (name, labels), v in m.items():
        outcome = re.search(r'outcome="([^"]*)"', labels)
        if name == metric and outcome and v:
            counts[outcome.group(1)] = counts.get(outcome.group(1), 0) + int(v)
    return counts


def total(m, metric):
    return sum(v for (name, _), v in m.items() if name == metric)


def mean_ms(m, metric):
    n = total(m, metric + "_count")
    return total(m, metric + "_sum") / n * 1000 if n else 0


def main():
    out = Path(sys.argv[1])
    notifications = load(out, "offer-notifications.json")
    if notifications:
        m = metrics(out, "metrics-push.txt")
        print("push")
        print("  notifications: " + offered(notifications))
        print("  pushes:        " + delivered(load(out, "sink-push.json")["push"]))
        print(f"  parley:        sends {by_label(m, 'parley_push_sends_total')}, "
              f"mean request {mean_ms(m, 'parley_push_send_seconds'):.1f} ms")
    none = load(out, "offer-messages-no-endpoint.json")
    if none:
        m = metrics(out, "metrics-webhooks.txt")
        print("webhooks")
        print("  messages, no endpoint:         " + offered(none))
        print("  messages, endpoint subscribed: " + offered(load(out, "offer-messages-webhook.json")))
        print("  deliveries:    " + delivered(load(out, "sink-webhooks.json")["webhook"]))
        print(f"  parley:        deliveries {by_label(m, 'parley_webhook_deliveries_total')}, "
              f"mean request {mean_ms(m, 'parley_webhook_delivery_seconds'):.1f} ms")


main()
