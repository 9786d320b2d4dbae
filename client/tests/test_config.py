"""The client's settings: the environment, the config file, the defaults."""

from multichat_client.config import load_config


def test_config_environment_wins_over_the_file(tmp_path):
    """MULTICHAT_URL and MULTICHAT_TOKEN override the file; the URL has a default."""
    config = tmp_path / "config.toml"
    config.write_text('url = "http://file.example"\ntoken = "from-file"\n')
    environ = {"MULTICHAT_CONFIG": str(config)}
    assert load_config(environ).token == "from-file"
    assert load_config(environ).url == "http://file.example"
    environ |= {"MULTICHAT_TOKEN": "from-env", "MULTICHAT_URL": "https://env.example/"}
    loaded = load_config(environ)
    assert (loaded.url, loaded.token) == ("https://env.example", "from-env")
    assert load_config({"MULTICHAT_CONFIG": str(tmp_path / "none.toml")}).url == (
        "http://127.0.0.1:8000"
    )
