"""One classical Runge-Kutta step of a deterministic flow (Lyapunov exponents, limit cycles)."""


def rk4_step(f, z, dt):
    """``z(t + dt)`` of ``dz/dt = f(z)`` by one classical fourth-order Runge-Kutta step."""
    k1 = f(z)
    k2 = f(z + dt / 2 * k1)
    k3 = f(z + dt / 2 * k2)
    k4 = f(z + dt * k3)
    return z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
