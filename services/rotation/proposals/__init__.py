"""The rotation proposer (issue 14): who should rotate where so a district meets its bars.

- `model`: the problem as plain data (schools, backbone placement, candidates, bars, constraints)
  and the rules that say who may go where;
- `figures`: the §4.3/§4.4/§4.6 figures of a set of moves, exact (the CV arithmetic is reused);
- `optimiser`: CP-SAT over counts of movers, with a time limit and a reported gap;
- `greedy`: the fallback, a move at a time, each one lowering the CV;
- `flows`: counts of movers turned into named people and schools;
- `repository`, `service`, `schemas`, `api`: storing proposals, jobs, plans, routes.
"""
