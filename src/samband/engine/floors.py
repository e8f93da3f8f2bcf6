"""The floors of the run's safety checks, shared by the circuit breaker
(:mod:`samband.engine.breaker`) and the full-scan guard (:mod:`samband.engine.fullscan`):
below them a share of a dataflow or a type means too little to act on."""

MIN_LINKS = 10  # below this many links a dataflow is too small for shares to mean much
# ... but from this many links, every linked record of one side deleted at once trips the
# breaker; and a type whose complete read had fewer records is not judged by the guard
MIN_WIPE = 3
