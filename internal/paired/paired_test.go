package paired

import "testing"

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 3, 2, 4}
	for _, tt := range []struct{ q, want float64 }{{0, 1}, {0.25, 2}, {0.5, 3}, {0.75, 4}, {1, 5}, {0.125, 1.5}} {
		if got := quantile(xs, tt.q); got != tt.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", xs, tt.q, got, tt.want)
		}
	}
	if xs[0] != 5 {
		t.Errorf("quantile sorted its input: %v", xs)
	}
	if got := quantile([]float64{7, 9}, 0.5); got != 8 {
		t.Errorf("median of two = %v, want 8", got)
	}
}
