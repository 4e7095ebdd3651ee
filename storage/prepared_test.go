package storage

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm/schema"
)

// The prepared reads scan columns by position into a model's fields: each
// must name every column of its model, in the model's order, or a column
// added to the model later would silently read as its zero value.
func TestPreparedReadsNameEveryColumn(t *testing.T) {
	for _, c := range []struct {
		query string
		model any
	}{
		{tokenBySignatureQuery(kindAccessToken), &accessTokenRow{}},
		{userBySubjectQuery, &userRow{}},
		{grantByRequestIDQuery, &grantRow{}},
	} {
		s, err := schema.Parse(c.model, &sync.Map{}, schema.NamingStrategy{})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, f := range s.Fields {
			if f.DBName != "" {
				want = append(want, f.DBName)
			}
		}
		list, _, _ := strings.Cut(strings.TrimPrefix(c.query, "SELECT "), " FROM ")
		got := strings.Split(list, ", ")
		if !slices.Equal(got, want) {
			t.Errorf("%T: the prepared read names %v, the model has %v", c.model, got, want)
		}
	}
}
