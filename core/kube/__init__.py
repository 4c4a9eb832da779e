"""Pure Kubernetes semantics the API server and the agent share, with no dependencies.

Label and field selectors, the three patch formats (JSON merge patch, JSON
patch, strategic merge patch and the type table it needs), resource
quantities, IntOrString percentages and the name/label validation rules.
Everything here is a plain function over plain JSON-shaped Python values
(dict, list, str, int, float, bool, None) so it is cheap to test exhaustively
and can be called from request handlers without any framework around it.
"""
