"""Alert routing: destinations, channels (webhook, Slack, PagerDuty, email), default
routes, the active-alerts state (repeat, acknowledge) and its outbox.

The one entry point for jobs is ``route_alerts`` (``obslib.alerting.router``): give it
alert dicts from ``obslib.alerts.make_alert`` (``id, severity, message, next_action`` and
optional ``source``) and it records them as active, sends what the routes say is due
(criticals first, within a time budget) and resolves what ended.
"""

from .destinations import Destinations, is_demo_data, production_guard

__all__ = ["Destinations", "is_demo_data", "production_guard"]
