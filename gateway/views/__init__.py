"""The composed cross-service views (api.md → Cross-service views); one module per view."""

from gateway.views import audit, balance, city, district, profiles

routers = [district.router, balance.router, city.router, profiles.router, audit.router]
