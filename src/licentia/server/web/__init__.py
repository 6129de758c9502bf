"""The web fronts of License Central: the customers' License Portal (``portal/``) and
the vendor console (``console/``), server-rendered with Jinja2 and htmx.

Pages only translate, as the API's routes do: they read a form, call the same context
use cases the API calls, and render the result or the error next to its field.
``install(app)`` adds them to the application ``create_app`` builds.
"""

from licentia.server.web.app import install

__all__ = ["install"]
