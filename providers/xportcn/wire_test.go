package xportcn

import (
	"encoding/json"
	"testing"
)

func TestParseFen(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "", want: 0},
		{in: "0", want: 0},
		{in: "2496", want: 2496},
		{in: "-15", want: -15},
		{in: "0.0", want: 0},
		{in: "12.0", want: 12},
		{in: "12.4", want: 12},
		{in: "12.5", want: 13},
		{in: "-12.5", want: -13},
		{in: "1125899906842624", want: 1 << 50},
		{in: "1125899906842625", wantErr: true},
		{in: "1e3", wantErr: true},
		{in: "1e99999999", wantErr: true},
		{in: "1/3", wantErr: true},
		{in: "12.", wantErr: true},
		{in: ".5", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "--1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseFen(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFen(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("parseFen(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestFlexTypes(t *testing.T) {
	var v struct {
		ID   flexString `json:"id"`
		Code *flexInt   `json:"code"`
		Amt  fen        `json:"amt"`
	}
	if err := json.Unmarshal([]byte(`{"id":3391234567890123456,"code":"200","amt":"7"}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.ID != "3391234567890123456" || v.Code == nil || *v.Code != 200 || v.Amt != 7 {
		t.Errorf("decoded %+v (code %v)", v, v.Code)
	}
	if err := json.Unmarshal([]byte(`{"code":"OK"}`), &v); err == nil {
		t.Error("a non-numeric code decoded without error")
	}
	if err := json.Unmarshal([]byte(`{"id":{}}`), &v); err == nil {
		t.Error("an object id decoded without error")
	}
}
