# The environment llmlab runs with in the Binder image. Sourced by binder/postBuild (build time)
# and binder/start (every container start), so the demo data is seeded where the server looks.
# Same home as ./scripts/lab: .llmlab-home/ in the repository folder (hidden in JupyterLab).
export LLMLAB_HOME="${LLMLAB_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.llmlab-home}"
# LiteLLM's price table is the copy bundled with it: nothing is fetched at run time.
export LITELLM_LOCAL_MODEL_COST_MAP=True
