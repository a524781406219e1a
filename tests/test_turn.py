"""TURN REST credentials (coturn --use-auth-secret) and the settings that drive them."""

import base64
import hashlib
import hmac
import os
import subprocess
import sys

import pytest

from rooms.turn import ice_config_for
from videochat.devstack import BASE_DIR


def test_credentials_follow_coturn_rest_scheme(settings):
    settings.STUN_URLS = ["stun:stun.example.com:3478"]
    settings.TURN_URLS = ["turn:turn.example.com:3478?transport=udp"]
    settings.TURN_SECRET = "north-wind"
    settings.TURN_TTL = 600
    settings.ICE_RELAY_ONLY = True
    config = ice_config_for(user_key="u7", now=1_000_000)
    assert config["expires_at"] == 1_000_600
    assert config["ice_transport_policy"] == "relay"
    stun, turn = config["ice_servers"]
    assert stun == {"urls": ["stun:stun.example.com:3478"]}
    assert turn["username"] == "1000600:u7"
    expected = base64.b64encode(
        hmac.new(b"north-wind", b"1000600:u7", hashlib.sha1).digest()
    ).decode()
    assert turn["credential"] == expected


def test_no_turn_means_no_expiry(settings):
    settings.STUN_URLS = []
    settings.TURN_URLS = []
    settings.ICE_RELAY_ONLY = False
    assert ice_config_for(user_key="g3") == {
        "ice_servers": [],
        "ice_transport_policy": "all",
        "expires_at": None,
    }


@pytest.mark.parametrize(
    "env, message",
    [
        ({"TURN_URLS": "turn:x:3478"}, "TURN_SECRET"),
        ({"ICE_RELAY_ONLY": "1"}, "ICE_RELAY_ONLY"),
        ({"ICE_RELAY_ONLY": "maybe"}, "ICE_RELAY_ONLY"),
        ({"STUN_URLS": "http://x"}, "STUN_URLS"),
        ({"TURN_URLS": "turn:x", "TURN_SECRET": "s", "TURN_TTL": "5"}, "TURN_TTL"),
        ({"CALL_RESUME_GRACE_S": "0"}, "CALL_RESUME_GRACE_S"),
    ],
)
def test_bad_ice_settings_fail_loudly_at_start(env, message):
    child_env = {**os.environ, "DJANGO_DEBUG": "1", **env}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env={**child_env, "DJANGO_SETTINGS_MODULE": "videochat.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
