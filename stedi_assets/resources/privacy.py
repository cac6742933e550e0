"""The privacy settings assets need: the consent policy and the pseudonym key."""

from dagster import ConfigurableResource

from stedi_assets.settings import DEVELOPMENT_PSEUDONYM_KEY
from stedi_assets.transforms.readings import ConsentPolicy


class Privacy(ConfigurableResource):
    consent_policy: ConsentPolicy = ConsentPolicy.SINCE
    # Wired from EnvVar("STEDI_PSEUDONYM_KEY") so the UI shows the variable's name, never its value.
    pseudonym_key: str = ""

    @property
    def uses_development_key(self) -> bool:
        return not self.pseudonym_key

    @property
    def key_bytes(self) -> bytes:
        return (self.pseudonym_key or DEVELOPMENT_PSEUDONYM_KEY).encode()
