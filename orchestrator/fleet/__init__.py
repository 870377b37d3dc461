"""A fleet: one release promoted in waves across targets (ECS services in other clusters, regions, accounts).

The per-target work is the existing per-service engine; this package adds only what is between targets: the
fleet.yaml contract (`model`, `loader`), when a wave may start (`calendar`), the wave decisions as a functional
core over the fleet journal (`decide`), the journal itself (`journal`) and the local executor (`run`)."""
