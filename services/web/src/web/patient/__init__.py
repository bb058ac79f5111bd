"""The patient's side: the status page a signed link opens, and the feedback survey."""
