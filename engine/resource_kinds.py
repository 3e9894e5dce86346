"""The kinds of resource a territory's directory lists (016, shelters...); forms name them in `ui.resources`."""

RESOURCE_KINDS = ("hotline_016", "psychological_care", "equality_office", "atenpro", "shelter", "victim_office",
                  "social_services", "legal_aid", "other")
