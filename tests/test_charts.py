import pandas as pd
import pytest

from latentviz import charts


def points(texts, labels):
    frame = pd.DataFrame(
        {"id": range(len(texts)), "x": range(len(texts)), "y": range(len(texts)), "text": texts, "label": labels}
    )
    return charts.with_hover(frame)


def test_untrusted_text_and_labels_are_escaped():
    figure = charts.map_figure(
        points(["<img src=x onerror=alert(1)> hi", "plain & simple"], ["<b>evil</b>", None]), "label"
    )
    hover = [h for trace in figure.data for h in (trace.hovertext or [])]
    assert "&lt;img src=x onerror=alert(1)&gt; hi" in hover and "plain &amp; simple" in hover
    # escaped once, as Plotly decodes: a quote stays a quote (it has no &quot;), news is full of them
    assert charts.hover_text('He said "no" and it\'s over') == 'He said "no" and it\'s over'
    assert not any("<img" in h for h in hover)
    assert sorted(trace.name for trace in figure.data) == sorted(["&lt;b&gt;evil&lt;/b&gt;", charts.NO_LABEL])


def test_one_trace_per_label_plus_overlays():
    frame = points([f"text {i}" for i in range(6)], ["a", "b", "a", "b", "c", None])
    placed = pd.DataFrame({"text": ["mine"], "x": [0.5], "y": [0.5]})
    figure = charts.map_figure(frame, "label", highlight_ids=[1, 2], focus_id=3, neighbour_ids=[4], placed=placed)
    names = [trace.name for trace in figure.data]
    assert names == ["(no label)", "a", "b", "c", "search matches", "neighbours", "chosen text", "your text"]
    assert list(figure.data[4].customdata) == [1, 2] and list(figure.data[6].customdata) == [3]
    assert figure.data[0].marker.opacity == pytest.approx(0.15)  # the rest fade while a search is shown


def test_long_text_is_wrapped_and_shortened():
    label = charts.hover_text("word " * 200)
    assert label.endswith("…") and "<br>" in label and len(label) < 320


def test_clusters_sort_as_numbers_noise_is_grey_and_colours_never_repeat():
    names = [f"cluster {i}" for i in (10, 2, 0, 1)] + ["noise"] + [f"cluster {i}" for i in range(11, 40)]
    figure = charts.map_figure(points([f"t{i}" for i in range(len(names))], names), "label")
    order = [trace.name for trace in figure.data]
    assert order[:5] == ["noise", "cluster 0", "cluster 1", "cluster 2", "cluster 10"]
    colours = [trace.marker.color for trace in figure.data]
    assert colours[0] == charts.NOISE_COLOUR and len(set(colours[1:])) == len(colours) - 1 == 33


def test_placed_texts_are_numbered_as_in_their_list():
    placed = pd.DataFrame({"text": ["first <b>", "second"], "x": [0.1, 0.2], "y": [0.1, 0.2]})
    figure = charts.map_figure(points(["a", "b"], ["x", "y"]), "label", placed=placed)
    yours = figure.data[-1]
    assert list(yours.text) == ["1", "2"] and yours.hovertext[0] == "1. first &lt;b&gt;"
    # SVG, drawn above the WebGL points whatever their number; the numbers bold with a halo
    assert yours.type == "scatter" and yours.textfont.shadow == "auto" and yours.textfont.weight == "bold"


def test_curve_panels_each_carry_their_own_step_axis():
    curves = pd.DataFrame(
        {"step": [1, 2] * 7, "metric": [f"m{i}" for i in range(7) for _ in range(2)], "value": range(14), "model": "#1"}
    )
    spec = charts.curves_chart(curves, columns=4).to_dict()
    assert spec["facet"]["field"] == "metric" and spec["columns"] == 4
    # a shared axis is drawn under each column, under the empty eighth cell too
    assert spec["resolve"]["axis"]["x"] == "independent"
    # figures as people read them (an L0 of 31.9983 shows as 32), in the axis and the hover alike
    encoding = spec["spec"]["encoding"]
    assert encoding["y"]["axis"]["format"] == ",.4~r"
    assert {tip["field"]: tip.get("format") for tip in encoding["tooltip"]} == {
        "model": None,
        "metric": None,
        "step": ",d",
        "value": ",.4~r",
    }


def test_the_feature_maps_colour_bar_stays_below_the_mode_bar():
    points = pd.DataFrame({"feature": [0, 1], "x": [0.0, 1.0], "y": [0.0, 1.0], "log10_density": [-3.0, -1.0]})
    points["label"], points["topic"] = ["a", "b"], ["sport", "mixed"]
    bar = charts.feature_map_figure(points).data[-1].marker.colorbar
    assert bar.y + bar.len / 2 <= 0.85 and bar.title.side == "right"  # the mode bar sits at the top right


def test_the_feature_map_coloured_by_topic_has_a_colour_per_topic_and_mixed_grey_beneath():
    points = pd.DataFrame({"feature": range(4), "x": [0.0, 1, 2, 3], "y": 0.0, "log10_density": -2.0})
    points["label"], points["topic"] = "<b>x</b>", ["sport", "mixed", "tech", "sport"]
    figure = charts.feature_map_figure(points, colour="topic")
    traces = {trace.name: trace for trace in figure.data}
    assert list(traces) == ["mixed", "sport", "tech"] and figure.layout.showlegend  # grey drawn first, beneath
    assert traces["mixed"].marker.color == charts.maps.NOISE_COLOUR
    assert traces["sport"].marker.color != traces["tech"].marker.color and list(traces["sport"].customdata) == [0, 3]
    assert "&lt;b&gt;x&lt;/b&gt;" in traces["sport"].hovertext[0]  # labels come from text: escaped


def test_dead_codes_are_drawn_as_visible_crosses_and_every_label_column_is_named():
    vectors = pd.DataFrame({"code": range(4), "x": [0.0, 1.0, 2.0, 3.0], "y": 0.0, "count": [50, 5, 0, 0]})
    used, dead = charts.codebook_map(vectors).to_dict()["layer"]
    assert dead["mark"]["shape"] == "cross" and dead["mark"]["size"] >= 60  # sized by use it would vanish
    datasets = charts.codebook_map(vectors).to_dict()["datasets"]
    assert sorted(len(rows) for rows in datasets.values()) == [2, 2]  # two used codes, two dead ones
    by_label = pd.DataFrame({"code": [1] * 5, "label": list("abcde"), "count": [3, 1, 4, 1, 5]})
    encoding = charts.label_heatmap(by_label).to_dict()["encoding"]
    assert encoding["x"]["axis"]["labelOverlap"] is False and encoding["color"]["legend"]["format"] == ",d"


def test_the_density_layers_blur_is_scipys_gaussian_filter():
    import numpy as np
    from scipy.ndimage import gaussian_filter

    counts = np.random.default_rng(0).poisson(3.0, (30, 30)).astype(float)
    for sigma in ((0.5, 0.5), (1.7, 4.2), (12.0, 40.0)):  # the last reaches past the grid: reflected again
        blurred = charts.maps.gaussian_blur(30, sigma[0]) @ counts @ charts.maps.gaussian_blur(30, sigma[1]).T
        assert np.allclose(blurred, gaussian_filter(counts, sigma=sigma), rtol=0, atol=1e-12)


def test_the_density_layer_peaks_where_the_points_are_thickest():
    import numpy as np

    rng = np.random.default_rng(0)
    dense, sparse = rng.normal((0, 0), 0.5, (4_000, 2)), rng.normal((10, 5), 0.5, (400, 2))
    xy = np.vstack([dense, sparse])
    trace = charts.map_density(pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}))
    z, x, y = np.asarray(trace.z), np.asarray(trace.x), np.asarray(trace.y)
    assert z.shape == (len(y), len(x)) == (charts.maps.DENSITY_BINS, charts.maps.DENSITY_BINS)
    top = np.unravel_index(z.argmax(), z.shape)  # rows are y
    assert abs(x[top[1]]) < 0.5 and abs(y[top[0]]) < 0.5
    island = z[np.argmin(abs(y - 5)), np.argmin(abs(x - 10))]  # the sparse island clears the lowest line
    assert trace.contours.start < island < z.max()
    assert trace.contours.coloring == "lines" and trace.hoverinfo == "skip"
