"""The bundled demo: a sample project and scripted model answers driving the real runtime."""

from loomkin.demo.scenario import DEMO_GOAL, copy_sample_project, demo_model, start_demo

__all__ = ["DEMO_GOAL", "copy_sample_project", "demo_model", "start_demo"]
