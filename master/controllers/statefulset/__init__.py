"""The StatefulSet controller and its revisions."""
