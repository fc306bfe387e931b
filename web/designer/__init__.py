"""The designers' area: the process library, the bpmn-js modeler and dmn-js editor, validation with
element-level issues, deploying new versions, diffs of two versions and the loop simulator."""
from web.designer.views import bp

__all__ = ["bp"]
