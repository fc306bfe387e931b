"""Official documents on the web: the signed PDF of a document, for whoever may read the instance that issued it
(``policy.check_read_document``); linked from the task page and the instance page."""
from web.documents.views import bp

__all__ = ["bp"]
