package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// A secret never shows, however the value holding it is printed or
// encoded.
func TestSecretNeverPrints(t *testing.T) {
	const value = "hunter2-very-secret"
	holder := struct {
		Password Secret `json:"password" yaml:"password"`
	}{Secret(value)}
	js, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	ym, err := yaml.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", holder), "%+v": fmt.Sprintf("%+v", holder), "%#v": fmt.Sprintf("%#v", holder),
		"%s": fmt.Sprint(holder.Password), "%q": fmt.Sprintf("%q", holder.Password),
		"json": string(js), "yaml": string(ym),
	} {
		if strings.Contains(out, value) {
			t.Errorf("%s prints the secret: %s", name, out)
		}
		if !strings.Contains(out, "<secret>") && !strings.Contains(out, `\u003csecret\u003e`) {
			t.Errorf("%s does not say a secret is there: %s", name, out)
		}
	}
	if Secret("").String() != "" {
		t.Error("an empty secret prints as something")
	}
}
