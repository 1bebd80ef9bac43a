import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_egp_core_never_imports_streamlit():
    for path in (ROOT / "egp_core").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "streamlit" for n in names), f"{path} imports streamlit"
