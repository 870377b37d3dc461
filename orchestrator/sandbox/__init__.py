"""ECS in a box: moto as the control plane, a task runner that plays the ECS agent, real containers."""
