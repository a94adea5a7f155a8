"""The generated code's ODE solver: `ode_solve`, one diffrax solve per item of the leading (batch, plate) dims."""

import jax
import jax.numpy as jnp


def ode_solve(rhs, y0, t0, ts, *args, ranks, rtol=1e-6, atol=1e-6, max_steps=10_000):
    """The solution of dy/dt = rhs(t, y, *args) from y0 at time t0, at the times ts: [..., len(ts), *y0's item].

    ranks: the item rank of y0 and of each of args (t0's is 0, ts's 1); the dims before them (chains, plates)
    are batch dims, lined up as in NumPy, with one solve per item (jax.vmap), so a plate's items (a device's
    share of a sharded plate) are solved apart, each with its own steps. Dormand-Prince 5(4) (Stan's rk45) with
    a PID step-size controller. Gradients are forward sensitivities, as Stan's: the solve carries the
    derivatives of the state with respect to y0 and the arguments that are differentiated (diffrax's
    ForwardMode: plain while loops, which also run inside shard_map, where diffrax's checkpointed adjoint
    fails, patrick-kidger/diffrax#765), and the reverse pass multiplies by them. A solve that fails (more than
    max_steps steps) gives
    NaN values: a log density that uses them is NaN, which NUTS takes as -inf (a divergent transition,
    rejected), and a start where it fails is redrawn."""
    import diffrax  # only generated programs with an ODE need it

    real = jnp.result_type(float)
    parts = [jnp.asarray(x, real) for x in (y0, t0, ts, *args)]
    item_ranks = [ranks[0], 0, 1, *ranks[1:]]
    batch = jnp.broadcast_shapes(*(x.shape[: x.ndim - r] for x, r in zip(parts, item_ranks)))
    flat = [
        jnp.broadcast_to(x, batch + x.shape[x.ndim - r :]).reshape((-1,) + x.shape[x.ndim - r :])
        for x, r in zip(parts, item_ranks)
    ]
    term = diffrax.ODETerm(lambda t, y, a: jnp.asarray(rhs(t, y, *a), real))
    solver = diffrax.Dopri5()
    controller = diffrax.PIDController(rtol=rtol, atol=atol)

    def solve(y0, t0, ts, args):
        sol = diffrax.diffeqsolve(
            term, solver, t0, ts[-1], None, y0, args, saveat=diffrax.SaveAt(ts=ts), stepsize_controller=controller,
            max_steps=max_steps, throw=False, adjoint=diffrax.ForwardMode(),
        )
        return jnp.where(sol.result == diffrax.RESULTS.successful, sol.ys, jnp.nan)

    solve_with_vjp = jax.custom_vjp(solve)

    def forward(y0, t0, ts, args):
        # The Jacobian of the solution with respect to each of y0 and args that is differentiated (None: not).
        values = [y0.value, *(a.value for a in args)]
        wrt = [i for i, x in enumerate([y0, *args]) if x.perturbed]
        if not wrt:
            return solve(values[0], t0.value, ts.value, tuple(values[1:])), [None] * len(values)

        def at(*xs):
            v = list(values)
            for i, x in zip(wrt, xs):
                v[i] = x
            ys = solve(v[0], t0.value, ts.value, tuple(v[1:]))
            return ys, ys

        jac, ys = jax.jacfwd(at, argnums=tuple(range(len(wrt))), has_aux=True)(*(values[i] for i in wrt))
        jacs = [None] * len(values)
        for i, j in zip(wrt, jac):
            jacs[i] = j
        return ys, jacs

    def backward(jacs, g):
        if isinstance(g, jax.custom_derivatives.SymbolicZero):
            return None, None, None, (None,) * (len(jacs) - 1)
        cot = [None if j is None else jnp.tensordot(g, j, axes=g.ndim) for j in jacs]
        return cot[0], None, None, tuple(cot[1:])

    solve_with_vjp.defvjp(forward, backward, symbolic_zeros=True)
    ys = jax.vmap(lambda y0, t0, ts, *args: solve_with_vjp(y0, t0, ts, args))(*flat)
    return ys.reshape(batch + ys.shape[1:])


ODE_HELPERS = {"ode_solve": (ode_solve, ())}
