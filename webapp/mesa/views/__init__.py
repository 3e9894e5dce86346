"""Mesa pages, one module per feature, all on the `mesa` blueprint: the Mesa, its meetings, the closed minutes.

Importing a feature module adds its routes to the blueprint, so this package imports each one.
"""

from webapp.mesa.views import meetings, mesas, minutes
from webapp.mesa.views.blueprint import bp

__all__ = ["bp", "meetings", "mesas", "minutes"]
