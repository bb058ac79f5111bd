"""The FHIR resource types the notifier serves, and the ones it only mirrors."""

RESOURCE_TYPES = [
    "Subscription",
    "Basic",  # the subscription topics, as Backport IG Basic-wrapped SubscriptionTopics
]
# The topics are the server's own definitions: clients read and search them, never change them.
READ_ONLY_TYPES = ["Basic"]
# Copies of referral-api's Task and ServiceRequest, kept so subscription filters are evaluated
# by the search engine itself; stored and searchable here, never served.
INTERNAL_TYPES = ["Task", "ServiceRequest"]
