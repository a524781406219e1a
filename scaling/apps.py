from django.apps import AppConfig


class ScalingConfig(AppConfig):
    name = "scaling"
    verbose_name = "Predictive scaling"

    def ready(self) -> None:
        # Bad SCALING_* values stop start-up, like the project's settings.
        from . import conf

        conf.settings_check()
