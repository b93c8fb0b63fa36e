"""The report's embedded idiom guide pairs each framework's primary with its tuned variant (issue 17)."""
from reports import idioms, render


def test_the_report_shows_every_tuned_cell_beside_the_primary():
    guides = idioms.guides()
    tuned = [(g, c) for g in guides for c in g.tuned]
    assert tuned, "no implementation file has a `# %% tuned-<phase>` cell"
    html = render.template_env().get_template("idioms.html.j2").render(guides=guides, guide_default=guides[0].task)
    for g, c in tuned:
        start = html.index(f'id="tuned-{g.task}"')
        block = html[start:html.index("</section>", start)]
        assert f'data-tuned="{c.key}"' in block, (g.task, c.key)
        for base, cell in c.tuned_pairs:
            assert str(c.phases[cell]) in block and (base not in c.phases or str(c.phases[base]) in block)
