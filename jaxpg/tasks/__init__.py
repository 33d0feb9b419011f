"""Small built-in tasks (gymnax ``Environment`` subclasses) registered by id in :mod:`jaxpg.envs`."""
